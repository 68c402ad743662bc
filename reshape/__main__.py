from reshape.cli import main

main()
