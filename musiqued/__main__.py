from musiqued.app.cli import main

main()
