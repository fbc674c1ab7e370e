from cauldrond.cli import main

main()
