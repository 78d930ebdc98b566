from musiquectl.cli import main

main()
