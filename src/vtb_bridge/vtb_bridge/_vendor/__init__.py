"""Third-party code vtb carries itself (see README.md here): python-socketio 4.6.1's and
python-engineio 3.14.2's clients, the library that speaks to Socket.IO v2 servers (Engine.IO 3),
which cannot be installed next to python-socketio 5 under their own names."""
