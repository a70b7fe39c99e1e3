"""Workflows that change parking sessions and who runs the parkings, one module a concern:
the driver's session lifecycle (``sessions``), its keys, commands and access log
(``access``), barriers opened through a gateway (``barriers``), the back office's session
actions (``back_office``) and operator staff (``operators``)."""
