from nestctl.entry import main

main()
