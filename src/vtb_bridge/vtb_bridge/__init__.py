"""vtb_bridge: Avatar parameters and their outputs: Socket.IO, VMC, VTube Studio, built-in page, robot joints."""
