"""vtb_gaze: Gaze vectors, eye openness, blinks, mouth and brows from landmarks and head pose."""
