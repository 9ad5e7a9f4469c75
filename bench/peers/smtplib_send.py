"""The smtplib peer: STARTTLS, AUTH PLAIN, one message, QUIT (what a 10-line script does)."""
import smtplib
import ssl
import sys

host, port, cafile, user, password, path, sender, rcpt = sys.argv[1:9]
context = ssl.create_default_context(cafile=cafile or None)
if not cafile:
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
with smtplib.SMTP(host, int(port)) as s, open(path, "rb") as f:
    s.starttls(context=context)
    s.ehlo()
    s.user, s.password = user, password
    s.auth("PLAIN", s.auth_plain)
    s.sendmail(sender, [rcpt], f.read())
