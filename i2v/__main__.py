from i2v.cli import app

app(prog_name="i2v")
