"""A test CA and a server certificate it signed for 127.0.0.1 and localhost (valid to 2126),
shared by the tests that talk TLS to a real server on 127.0.0.1."""

from __future__ import annotations

import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TEST_CA_PEM = """\
-----BEGIN CERTIFICATE-----
MIIDMzCCAhugAwIBAgIUEZRRuPFY97qYQX7ohSlSxytMHdAwDQYJKoZIhvcNAQEL
BQAwIDEeMBwGA1UEAwwVY2FuYXJ5LWVuZ2luZSB0ZXN0IENBMCAXDTI2MTEyNjEx
MjczMFoYDzIxMjYxMTAyMTEyNzMwWjAgMR4wHAYDVQQDDBVjYW5hcnktZW5naW5l
IHRlc3QgQ0EwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDG7o9cWRCc
PheOfzih+E2tBbfWo+oVWdccc9HSk/YdkKGCvhLEG/HYToGBRfHh4TlC8inCvU9t
q8i2yNH5I3qLYDwbVcMuLpSO8N9hTp7LnM8eDCnQCPzVyZd03X9TKvSxVm/1UCsD
jP0em2e1zP6oxixcn9kL0Z5rtaAq9JPaeoI1dno/xUZkkOp6JUj+BY+n9qvE+0VE
0T7vjpbB8QPhL399NXFpW/ISKipN3lP+S30sn9fXWmcg9+dCXhP2W+GQ9RAdvSlP
43fqb0Ztf0J3BsNFQwLAiUTlZmySBMGkXTg8Q43//jH1wF3UqHJlJApOeigrKl/l
lHH7YggS/3ylAgMBAAGjYzBhMB0GA1UdDgQWBBRY1SdQBlsW157KMGenvZfipR3d
GTAfBgNVHSMEGDAWgBRY1SdQBlsW157KMGenvZfipR3dGTAPBgNVHRMBAf8EBTAD
AQH/MA4GA1UdDwEB/wQEAwIBBjANBgkqhkiG9w0BAQsFAAOCAQEAgUXCm33pT54f
Cy4+LQa1IIq0PMr9hdBKvjVvDdjQkw/UVtcVEuy2yH8QOW4iqCdB27pyKflfbobk
JiuGlNB/73QF06/z+2KhJYCawm5IuYluCMcmSl10lflWO8pnC23cqWyKQHPsUzK0
hRHyIxHKr4to1q1+wbUNI9Nto0NGgGghXiUEHwDuiQIEw1+OLRJBg5wXkUuyRHDU
4TqK4We2/iz+NRal7LWGD5i2R2tJtemVDAVRjZ85I1zHu9O2sW+Rnue5pEKNZ0YL
VeZHAD1oYxC/DHQ1/UEqATtkvCZLbAzpncpvHnnSfhf+2pxh3ioxuPJIU6xwjkMh
8ouEezmtFw==
-----END CERTIFICATE-----
"""

SERVER_CERT_PEM = """\
-----BEGIN CERTIFICATE-----
MIIDVzCCAj+gAwIBAgIUKjqzlEnfXj6feOaWv9pPt94OYvowDQYJKoZIhvcNAQEL
BQAwIDEeMBwGA1UEAwwVY2FuYXJ5LWVuZ2luZSB0ZXN0IENBMCAXDTI2MTEyNjEx
MjczMFoYDzIxMjYxMTAyMTEyNzMwWjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwggEi
MA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQCY5BIz9ubi5TSwgq4F87BZyY6+
mcBJuXp63mLPuVo+4Nw2qR01d4GLN/G7VV5ieGnPzdjvVX0f31V34ksUo47PEaQ9
ONYwDFatvDAvjwCQA7/aXILVdC8olybo31YFFfmcOXOhp80ss2z5VkUDI5XB6lZX
sF78SXywiTv5+MvSu91BWgHtOYWhkA04aXhw866GzvP5mpKd+qTGsXPiFxQR9nkQ
orTaH2ejpb5XOeGynJ4RxO4rizaFers0W9QpP1VyHMT1OdYeGKf6jGQ58VzMN8JO
Nq+EHkq54IyilgTUG0k+3r+arY05VLr03mAPreZljC4lwzqs9PuCytgiuthLAgMB
AAGjgZIwgY8wGgYDVR0RBBMwEYcEfwAAAYIJbG9jYWxob3N0MAwGA1UdEwEB/wQC
MAAwDgYDVR0PAQH/BAQDAgWgMBMGA1UdJQQMMAoGCCsGAQUFBwMBMB0GA1UdDgQW
BBQt3nIPDhPbB3H/6eZC/tdzG1DSrjAfBgNVHSMEGDAWgBRY1SdQBlsW157KMGen
vZfipR3dGTANBgkqhkiG9w0BAQsFAAOCAQEAupKaWKh/l370+qnZDc2P+FhgqQcv
qfWfBHy0sa410G8r+LPiN6BoIMkuQa4h6Wqwk8jAX9uMDytx6zFdy1aXBP/oNDlm
O9hn5Rc+ByITmMwo8gM3JZa2CB7f898Js3s81iaT+WT4abiuWNfyVcBFdV4dQDo1
A3xSL5ltWtyIiva7pti2QIfznVGRUIivWZsMTd7c0PP0SZaXhmqZiDcDg32WKxOM
lEBgUBtjn7z6lgBJbwhbAvdnTuRbHCeBMufFEu3dbjaoKdN+3ov8umg+YzGVtdIC
yA4gLUiww6+QDNxGUWRqhj7ERETVEQEPfuAutjG309KI3KI8li27IK3vHA==
-----END CERTIFICATE-----
"""

SERVER_KEY_PEM = """\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCY5BIz9ubi5TSw
gq4F87BZyY6+mcBJuXp63mLPuVo+4Nw2qR01d4GLN/G7VV5ieGnPzdjvVX0f31V3
4ksUo47PEaQ9ONYwDFatvDAvjwCQA7/aXILVdC8olybo31YFFfmcOXOhp80ss2z5
VkUDI5XB6lZXsF78SXywiTv5+MvSu91BWgHtOYWhkA04aXhw866GzvP5mpKd+qTG
sXPiFxQR9nkQorTaH2ejpb5XOeGynJ4RxO4rizaFers0W9QpP1VyHMT1OdYeGKf6
jGQ58VzMN8JONq+EHkq54IyilgTUG0k+3r+arY05VLr03mAPreZljC4lwzqs9PuC
ytgiuthLAgMBAAECggEACn4uNaMug2HudMxZlY6Wis/HdfmzwoHyD8UVcpYqkgHF
4azhLhs09WrYf0SqBQeok2dx1pmL/26V1tpEA6pmxOIieHhfH5sPk9eqvIjYjAm5
CaTeiDgm4gB43ib9wbzMjbxvqcEl1qyI83yVOrrr4aW4jHoa4SVJMA1EsLCZJHql
ZaplnmvZH3ZBBCvUmsNbbjhbyrTHsHSIBGa/UEvNKm1gnzXfHwGk7NFwwcdTgUUB
UhuxsgAt64/doZuK6n/jbb9qIq1y872mzt2a/zKn1lnsXWFQ4TM6ae300V/QMO2E
Yc6RCaso5ZLfDFha8CCO45GR9O/EDSE99yVqIc5FAQKBgQDS4oTQuEUZA/Np7uXA
Lf4HkvCVmp62BEfPzM6RIap1c5JlMEjU2mVdsgtxsVnMKa8KmSYn6lmALHIVXhwH
bMbFCv2RpxIlRvRrjEBfauTtoqjGeM7LxtqTj9Bo8NNhkMECWfNRYEM9cVJJ8sa8
6twUpHu788LmOaRI3D2vuo/2gQKBgQC5mWlr2lEZaJbuKlU4Xryzn6HsIrAYLcWc
PtB+vxvRLpBvjBBAXan+Aq4BYVTcb69VHj873KnkCFC3VDUXpcigkKsqTqU5f31W
HcsNp0iX235qE03IwRJhGOYO5qVCYgB3rRlB41gffzcCKumtkPefXUBxR1C4QRBX
px8n+SJgywKBgHBXzgtm7yCJc0YOx4RevAKK6/G24i/zDdKMt8qnFajmPan8VABY
rEGC1QfnRAA4gJBzz9jZxn46rzfk36ew8h8MYNMUHt2O9CzLFYv/ZR+XVLQOrZPv
RofvyEXvbZx/QeMfyjiiwI9d7EmKtQb1UvMIQQZ6sGx3bqaF9bLE/2aBAoGBALGU
QFLKSwhFkwuDg5BwzJoMpY/azKQFv2o0i6aJ0eK+a8HewHnlZE2+YKC/cMONNLP7
QcNT6VVeQ2R1dGsQ2zoN0Uekgd/WxKRN00dYBFQP1g9GMwle+effO9eMBRjTzeCz
xVPOYzWXsZkoV/cSmmpnfc4kzu3MiwdixqOncqYrAoGAOHZRu5s/bN/GBo7LFHNK
wKIz64upefO2sTnlg7sVXeIfd+eeHNnT234vzZmevTfSOSfZPBZ6CjnIV5aEbDWK
66GcMZf3C+sCK8Xi16S2glxsuRuGw3d6rUssOxh+tSnVb/IidJHGTdL9FgU3GRjH
970gq9dGaVYAEOc9ysTufNc=
-----END PRIVATE KEY-----
"""


@contextmanager
def serving_https(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTPS server on 127.0.0.1 with the certificate the test CA signed; yields its base
    URL (``https://127.0.0.1:<port>``)."""
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
        cert.write_text(SERVER_CERT_PEM)
        key.write_text(SERVER_KEY_PEM)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
