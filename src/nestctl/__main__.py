from nestctl.cli import main

main()
