"""vtb_detector: face detection, tracking and landmarks. The modules here other than `node`
never import rclpy, so they can be used and tested outside ROS."""
