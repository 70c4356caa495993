# vtb: python-engineio 3.14.2's client only (vendored, see ../README.md). Upstream's __init__.py
# also imports the servers, the middleware and the async drivers, which are not vendored; this
# file replaces it.
from .client import Client
from .asyncio_client import AsyncClient
from . import exceptions

__version__ = '3.14.2'

__all__ = ['__version__', 'Client', 'AsyncClient', 'exceptions']
