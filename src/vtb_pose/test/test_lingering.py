"""LingeringPool, the pose node's per-face publishers: made once per key, kept linger_s after
their key was last used, at most max_size, never one in use now."""
from vtb_pose.lingering import LingeringPool


def pool(linger_s=5.0, max_size=4):
    made, destroyed = [], []

    def make(key):
        made.append(key)
        return f"pub-{key}"

    return LingeringPool(make, destroyed.append, linger_s, max_size), made, destroyed


def test_a_key_used_every_frame_is_made_once():
    p, made, destroyed = pool()
    for n in range(100):
        assert p.get("f00d", n / 30) == "pub-f00d"
        p.sweep(n / 30)
    assert made == ["f00d"] and destroyed == []


def test_a_key_that_left_goes_after_linger_s_and_one_that_comes_back_keeps_its_resource():
    p, made, destroyed = pool(linger_s=5.0)
    p.get("a", 0.0), p.get("b", 0.0)
    p.sweep(0.0)
    p.get("b", 3.0)
    p.sweep(4.9)
    assert destroyed == [] and len(p) == 2
    p.sweep(5.1)
    assert destroyed == ["pub-a"] and "b" in p and "a" not in p
    p.get("b", 6.0)                 # lost for 3 s and back: the same publisher
    assert made == ["a", "b"]
    p.sweep(20.0)
    assert destroyed == ["pub-a", "pub-b"] and len(p) == 0


def test_new_keys_every_frame_stay_bounded_and_the_current_ones_are_kept():
    p, made, destroyed = pool(linger_s=5.0, max_size=4)
    for n in range(50):
        now = n / 30
        keys = [f"k{n}-{i}" for i in range(3)]
        for k in keys:
            p.get(k, now)
        p.sweep(now)
        assert len(p) <= 4 and all(k in p for k in keys)
    assert len(made) == 150 and len(destroyed) == 146
    p.close()
    assert len(p) == 0 and len(destroyed) == 150
