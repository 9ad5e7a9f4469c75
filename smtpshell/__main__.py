from smtpshell.cli import run

run()
