from provision.cli import app

app(prog_name="provision")
