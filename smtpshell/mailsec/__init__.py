"""Where mail for a domain goes, and whether its TLS is protected (issue 17).

* ``dnsclient``: a small DNS client on dnspython (UDP with the EDNS DO bit, TCP when the
  answer is truncated) that says whether the resolver validated the answer (the AD bit).
* ``mx``: the MX lookup of RFC 5321 §5.1, implicit MX (the domain's own A/AAAA) and null
  MX (RFC 7505).
* ``dane``: TLSA records at ``_PORT._tcp.HOST`` and matching them against a server's
  certificate chain (RFC 6698, RFC 7671, RFC 7672).
* ``mta_sts``: the MTA-STS policy (RFC 8461).

Nothing is imported here: dnspython and ``cryptography`` are loaded only when one of these
modules is, so that a session without ``--mx``, ``--dane`` or ``--mta-sts`` never pays for
them.
"""
