"""vtb_pose: Head pose from face landmarks: PnP, filtering, TF frames face_<id>, markers."""
