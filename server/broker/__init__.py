"""The MQTT broker's set-up: Mosquitto config, ACL (``acl``, data) and TLS certificates.

:mod:`server.broker.config` renders the config (``pisces broker init``);
:mod:`server.broker.certificates` makes the CA and the broker's certificate.
Device credentials live in :mod:`server.credentials`.
"""
