"""Dataset loaders on fixture files written here (never downloaded), and the packaged mini set."""
from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reshape import data
from reshape.errors import ReshapeError

IDX_NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def normalised(value: int, mean: float, std: float) -> float:
    return (value / 255 - mean) / std


# -- IDX: MNIST / Fashion-MNIST ----------------------------------------------------------

def raw_idx(array: np.ndarray) -> bytes:
    """IDX bytes built by hand from the format description (independent of write_idx)."""
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_mnist(folder: Path, gz_split: str = "train") -> None:
    """Train: 6 images, image i filled with 40*i, label i % 3. Test: 4 images, raw bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 6), ("test", 4)):
        images = np.stack([np.full((28, 28), 40 * i, np.uint8) for i in range(n)])
        labels = np.arange(n, dtype=np.uint8) % 3
        for name, array in zip(IDX_NAMES[split], (images, labels)):
            if split == gz_split:
                (folder / f"{name}.gz").write_bytes(gzip.compress(raw_idx(array)))
            else:
                (folder / name).write_bytes(raw_idx(array))


def test_idx_gz_and_raw_load_exact_pixels_and_labels(tmp_path):
    write_mnist(tmp_path)
    train = data.load("mnist", root=str(tmp_path), augment=False)
    test = data.load("mnist", "test", root=str(tmp_path))
    assert (len(train), len(test)) == (6, 4)
    image, label = train[5]
    assert image.dtype == torch.float32 and image.shape == (1, 28, 28) and label == 2
    # pixel 200 under MNIST's mean 0.1307 / std 0.3081: (200/255 - 0.1307) / 0.3081 = 2.1215
    assert image[0, 13, 7].item() == pytest.approx(normalised(200, 0.1307, 0.3081), abs=1e-5)
    assert image[0, 13, 7].item() == pytest.approx(2.12151, abs=1e-4)
    assert [test[i][1] for i in range(4)] == [0, 1, 2, 0]
    assert isinstance(train, data.TensorImages) and train.images.dtype == torch.uint8


def test_labels_beyond_the_preset_classes_are_refused(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(raw_idx(np.array([0, 1, 10, 2], np.uint8)))
    with pytest.raises(ReshapeError, match="labels for 11 classes but the mnist preset has 10"):
        data.load("mnist", "test", root=str(tmp_path))


def test_idx_torchvision_raw_layout_is_found(tmp_path):
    write_mnist(tmp_path / "FashionMNIST" / "raw", gz_split="test")
    assert len(data.load("fashion-mnist", root=str(tmp_path))) == 6


def test_write_idx_round_trips_through_the_reader(tmp_path):
    array = torch.arange(24, dtype=torch.uint8).reshape(2, 3, 4)
    data.write_idx(tmp_path / "a.gz", array)
    assert gzip.decompress((tmp_path / "a.gz").read_bytes()) == raw_idx(array.numpy())
    assert torch.equal(data.read_idx(tmp_path / "a.gz"), array)


@pytest.mark.parametrize("damage", ["magic", "truncated", "gzip"])
def test_malformed_idx_names_the_file(tmp_path, damage):
    write_mnist(tmp_path)
    bad = tmp_path / "t10k-images-idx3-ubyte"
    body = bad.read_bytes()
    if damage == "magic":
        bad.write_bytes(b"\0\0\x09\x03" + body[4:])
    elif damage == "truncated":
        bad.write_bytes(body[:-10])
    else:
        bad.unlink()
        bad = tmp_path / "t10k-images-idx3-ubyte.gz"
        bad.write_bytes(gzip.compress(body)[:50])
    with pytest.raises(ReshapeError, match=str(bad)):
        data.load("mnist", "test", root=str(tmp_path))


# -- CIFAR in torchvision's layout ---------------------------------------------------------

def write_cifar_batch(path: Path, first: int, n: int, label_key: str) -> None:
    """Batch of ``n`` images; image k (global index first + k) has every byte = first + k."""
    rows = np.stack([np.full(3072, first + k, np.uint8) for k in range(n)])
    rows[:, 1024 + 5 * 32 + 9] = 250  # green plane, row 5, column 9
    entry = {"data": rows, label_key: [(first + k) % 10 for k in range(n)], "filenames": [b"x.png"] * n}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(entry, protocol=2))


@pytest.fixture
def cifar10_root(tmp_path) -> Path:
    folder = tmp_path / "cifar-10-batches-py"
    for b in range(5):
        write_cifar_batch(folder / f"data_batch_{b + 1}", 2 * b, 2, "labels")
    write_cifar_batch(folder / "test_batch", 100, 3, "labels")
    return tmp_path


def test_cifar10_batches_concatenate_in_order_with_exact_pixels(cifar10_root):
    train = data.load("cifar10", root=str(cifar10_root), augment=False)
    assert len(train) == 10 and [train[i][1] for i in range(10)] == list(range(10))
    image, _ = train[7]
    assert image.shape == (3, 32, 32)
    assert image[0, 0, 0].item() == pytest.approx(normalised(7, 0.4914, 0.2470), abs=1e-5)
    assert image[1, 5, 9].item() == pytest.approx(normalised(250, 0.4822, 0.2435), abs=1e-5)
    assert image[2, 5, 9].item() == pytest.approx(normalised(7, 0.4465, 0.2616), abs=1e-5)
    assert len(data.load("cifar10", "test", root=str(cifar10_root))) == 3


def test_cifar100_uses_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    write_cifar_batch(folder / "train", 0, 4, "fine_labels")
    write_cifar_batch(folder / "test", 0, 2, "fine_labels")
    train = data.load("cifar100", root=str(folder))  # the batch folder itself also works
    assert [train[i][1] for i in range(4)] == [0, 1, 2, 3]


def test_download_is_skipped_when_the_files_are_there(cifar10_root):
    assert len(data.load("cifar10", root=str(cifar10_root), download=True)) == 10


def test_truncated_cifar_pickle_names_the_file(cifar10_root):
    bad = cifar10_root / "cifar-10-batches-py" / "data_batch_3"
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(ReshapeError, match=str(bad)):
        data.load("cifar10", root=str(cifar10_root))


class _Exploit:
    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def test_cifar_pickle_cannot_run_code(cifar10_root):
    marker = cifar10_root / "pwned"
    exploit = _Exploit()
    exploit.target = str(marker)
    bad = cifar10_root / "cifar-10-batches-py" / "test_batch"
    bad.write_bytes(pickle.dumps({"data": exploit, "labels": [0]}, protocol=2))
    with pytest.raises(ReshapeError, match="refusing to load"):
        data.load("cifar10", "test", root=str(cifar10_root))
    assert not marker.exists()


# -- Image folders: ImageFolder and TinyImageNet ---------------------------------------------

def write_image(path: Path, value: int, size: int = 8, fmt: str = "PNG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), (value, value, value)).save(path, fmt)


def test_imagefolder_classes_and_eval_labels_follow_the_train_folder(tmp_path):
    for cls in ("cat", "dog", "emu"):
        for k in range(2):
            write_image(tmp_path / "train" / cls / f"{k}.png", 10)
    write_image(tmp_path / "val" / "emu" / "0.png", 128)  # val lacks cat and dog
    assert data.info("imagefolder", str(tmp_path)).num_classes == 3
    train = data.load("imagefolder", root=str(tmp_path))
    val = data.load("imagefolder", "val", root=str(tmp_path))
    assert len(train) == 6 and len(val) == 1
    image, label = val[0]
    assert label == 2 and image.shape == (3, 224, 224)
    assert image[0, 100, 100].item() == pytest.approx(normalised(128, 0.485, 0.229), abs=1e-5)
    assert train[0][0].shape == (3, 224, 224)  # RandomResizedCrop back to 224
    # probe batches from the loaded file list: resize and centre crop, as an unaugmented load
    (batch,) = data.probe_batches(train, n=1, batch=6)
    plain = data.load("imagefolder", root=str(tmp_path), augment=False)
    order = torch.randperm(6, generator=torch.Generator().manual_seed(0)).tolist()
    assert torch.equal(batch, torch.stack([plain[i][0] for i in order]))


def test_imagefolder_test_subfolder_stands_in_for_val(tmp_path):
    write_image(tmp_path / "train" / "a" / "0.png", 0)
    write_image(tmp_path / "test" / "a" / "0.png", 0)
    assert len(data.load("imagenet", "test", root=str(tmp_path))) == 1


@pytest.fixture
def tiny_root(tmp_path) -> Path:
    root = tmp_path / "tiny-imagenet-200"
    wnids = ["n02", "n01"]  # wnids.txt order is not label order: labels follow sorted ids
    (root / "val").mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    for wnid in wnids:
        for k in range(2):
            write_image(root / "train" / wnid / "images" / f"{wnid}_{k}.JPEG", 60, 64, "JPEG")
    lines = []
    for k, wnid in enumerate(["n02", "n01", "n02"]):
        write_image(root / "val" / "images" / f"val_{k}.JPEG", 200, 64, "JPEG")
        lines.append(f"val_{k}.JPEG\t{wnid}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_tinyimagenet_layout_with_val_annotations(tiny_root):
    train = data.load("tinyimagenet", root=str(tiny_root))
    val = data.load("tinyimagenet", "test", root=str(tiny_root))
    assert sorted(label for _, label in train.samples) == [0, 0, 1, 1]
    assert [val[i][1] for i in range(3)] == [1, 0, 1]
    assert val[0][0].shape == train[0][0].shape == (3, 64, 64)


def test_tinyimagenet_bad_annotation_names_the_file(tiny_root):
    annotations = tiny_root / "tiny-imagenet-200" / "val" / "val_annotations.txt"
    annotations.write_text("val_0.JPEG\tn99\t0\t0\t1\t1\n")
    with pytest.raises(ReshapeError, match=f"{annotations} line 1"):
        data.load("tinyimagenet", "val", root=str(tiny_root))


# -- The packaged mini set --------------------------------------------------------------------

def test_mini_set_is_balanced_real_fashion_mnist():
    train = data.load("fashion-mnist-mini")
    test = data.load("fashion-mnist-mini", "test")
    assert train.images.shape == (6000, 1, 28, 28) and test.images.shape == (1000, 1, 28, 28)
    assert torch.bincount(train.labels).tolist() == [600] * 10
    assert torch.bincount(test.labels).tolist() == [100] * 10
    assert int(train.labels.min()) == 0 and int(train.labels.max()) == 9
    assert train.images.float().std() > 50  # real images, not blanks
    image, label = test[0]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32 and 0 <= label <= 9
    info = data.info("fashion-mnist-mini")
    assert (info.input_size, info.in_chans, info.num_classes, info.stem) == (28, 1, 10, "cifar")


# -- Augmentation -----------------------------------------------------------------------------

def one_dot(value: int = 255) -> torch.Tensor:
    images = torch.zeros(1, 1, 8, 8, dtype=torch.uint8)
    images[0, 0, 2, 5] = value
    return images


def test_augment_off_is_deterministic_and_on_crops_and_flips_within_the_padding():
    plain = data.TensorImages(one_dot(), torch.tensor([0]), (0.0,), (1.0,))
    assert torch.equal(plain[0][0], plain[0][0]) and plain[0][0][0, 2, 5] == 1.0
    augmented = data.TensorImages(one_dot(), torch.tensor([0]), (0.0,), (1.0,),
                                  {"kind": "pad-crop", "padding": 2, "flip": True})
    torch.manual_seed(0)
    spots = set()
    for _ in range(200):
        image = augmented[0][0]
        assert image.shape == (1, 8, 8)
        nonzero = torch.nonzero(image[0]).tolist()
        assert len(nonzero) <= 1  # the dot moved or fell off the edge, never duplicated
        if nonzero:
            (row, col), = nonzero
            assert abs(row - 2) <= 2 and (abs(col - 5) <= 2 or abs(col - (7 - 5)) <= 2)
            spots.add((row, col))
    mirrored = {(r, c) for r, c in spots if abs(c - 5) > 2}
    assert len(spots) > 10 and mirrored  # shifts in both axes, and flips happened


def test_augmentation_replays_under_the_same_seed():
    augmented = data.TensorImages(one_dot(), torch.tensor([0]), (0.0,), (1.0,),
                                  {"kind": "pad-crop", "padding": 2, "flip": True})
    torch.manual_seed(3)
    first = [augmented[0][0] for _ in range(5)]
    torch.manual_seed(3)
    assert all(torch.equal(a, augmented[0][0]) for a in first)


def test_probe_batches_are_unaugmented_images_of_the_whole_loaded_split(tmp_path):
    write_mnist(tmp_path)  # train image i is filled with 40*i
    train, _ = data.splits("mnist", str(tmp_path), limit=2)
    batches = data.probe_batches(train, n=2, batch=3)
    assert [b.shape for b in batches] == [(3, 1, 28, 28)] * 2  # all 6 images, not the 2 of the subset
    plain = data.load("mnist", root=str(tmp_path), augment=False)
    order = torch.randperm(6, generator=torch.Generator().manual_seed(0)).tolist()
    assert torch.equal(torch.cat(batches), torch.stack([plain[i][0] for i in order]))
    assert train.dataset.padding == 2  # the training split keeps its augmentation


def test_augment_defaults_to_the_train_split(tmp_path):
    write_mnist(tmp_path)
    assert data.load("mnist", root=str(tmp_path)).padding == 2
    assert data.load("mnist", root=str(tmp_path)).flip is False  # digits are not mirrored
    assert data.load("mnist", "test", root=str(tmp_path)).padding == 0
    assert data.load("mnist", root=str(tmp_path), augment=False).padding == 0


# -- Presets, splits and missing data ---------------------------------------------------------

def test_splits_are_the_augmented_train_and_plain_test_split_cut_by_a_seeded_subset(tmp_path):
    write_mnist(tmp_path)  # 6 train and 4 test images
    train, test = data.splits("mnist", str(tmp_path), limit=3, seed=1, test_limit=1)
    assert (len(train), len(test)) == (3, 1)
    assert train.dataset.padding == 2 and test.dataset.padding == 0
    assert train.indices == data.subset(data.load("mnist", root=str(tmp_path)), 3, 1).indices
    full_train, full_test = data.splits("mnist", str(tmp_path))
    assert (len(full_train), len(full_test)) == (6, 4)


def test_every_preset_is_listed_with_its_geometry():
    assert set(data.DATASETS) == {"cifar10", "cifar100", "tinyimagenet", "imagenet", "imagefolder",
                                  "fashion-mnist", "mnist", "fashion-mnist-mini"}
    assert data.info("cifar100") == data.DatasetInfo(
        "cifar100", 32, 3, 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), "cifar")
    assert data.info("imagenet").num_classes == 1000 and data.info("tinyimagenet").input_size == 64


def test_missing_dataset_lists_every_path_searched_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESHAPE_DATA", str(tmp_path / "store"))
    roots = data.default_roots("cifar10")
    assert roots == [tmp_path / "store" / "cifar10", tmp_path / "store",
                     tmp_path / "data" / "cifar10", tmp_path / "data"]
    with pytest.raises(ReshapeError) as err:
        data.load("cifar10")
    message = str(err.value)
    assert all(str(root) in message for root in roots) and "pass download=True" in message and message.endswith(" as root")
    assert "/usr/share/datasets/fashion-mnist" in map(str, data.default_roots("fashion-mnist"))
    with pytest.raises(ReshapeError, match="apt-get install dataset-fashion-mnist"):
        data.load("fashion-mnist", root=str(tmp_path / "nowhere"))
    with pytest.raises(ReshapeError, match="imagefolder not found"):
        data.info("imagefolder")


def test_reshape_data_variable_and_home_folder_roots_are_searched(tmp_path, monkeypatch):
    write_mnist(tmp_path / "store" / "mnist")
    monkeypatch.setenv("RESHAPE_DATA", str(tmp_path / "store"))
    assert len(data.load("mnist", "test")) == 4
    monkeypatch.setenv("HOME", str(tmp_path))
    assert len(data.load("mnist", "test", root="~/store/mnist")) == 4


def test_bad_split_and_download_of_a_non_cifar_set_are_user_errors(tmp_path):
    write_mnist(tmp_path)
    with pytest.raises(ReshapeError, match="unknown split 'dev'"):
        data.load("mnist", "dev", root=str(tmp_path))
    with pytest.raises(ReshapeError, match="cannot be downloaded.*only cifar10, cifar100"):
        data.load("mnist", root=str(tmp_path), download=True)
    with pytest.raises(ReshapeError, match="unknown dataset 'cifar1'"):
        data.load("cifar1")
