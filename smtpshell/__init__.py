"""smtpshell: an interactive SMTP client for testing and teaching."""

__version__ = "0.1.0"
