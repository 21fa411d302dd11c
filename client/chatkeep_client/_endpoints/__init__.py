"""Every endpoint of the API as a function building its Call (``chatkeep_client._call``); the
clients' resources wrap them (``chatkeep_client._resources``)."""
