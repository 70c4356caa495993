# vtb: python-socketio 4.6.1's client only (vendored, see ../README.md). Upstream's __init__.py
# also imports the servers, the message-queue managers and the WSGI/ASGI/Tornado glue, which
# are not vendored; this file replaces it.
from .client import Client
from .asyncio_client import AsyncClient
from . import exceptions

__version__ = '4.6.1'

__all__ = ['__version__', 'Client', 'AsyncClient', 'exceptions']
