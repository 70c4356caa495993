"""vtb_eval: how well and how fast vtb works, kept out of the node packages: the rendered 3D head
of known pose, gaze and expression, the pose and gaze evaluations, the perception and detector
benchmarks, MediaPipe as a measured peer, the synthetic detector networks, the sample photos and
the astronaut clip."""
