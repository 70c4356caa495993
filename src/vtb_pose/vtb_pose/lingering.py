"""Per-key resources (the pose node's per-face publishers) that outlive their key by a delay.

Making and destroying a ROS publisher costs milliseconds and a discovery round on the graph, so
a face id that disappears for a frame or two, or a message full of new ids, must not make and
destroy one each time. `LingeringPool` keeps a resource for `linger_s` after its key was last
used and at most `max_size` of them (the least recently used go first). Plain Python: `make`
and `destroy` are the node's callables, `now` is any monotonic clock in seconds.
"""


class LingeringPool:
    def __init__(self, make, destroy, linger_s: float, max_size: int):
        self.make, self.destroy = make, destroy
        self.linger_s, self.max_size = linger_s, max_size
        self.items = {}        # key -> resource
        self.last_used = {}    # key -> now of its last get, in order of last use
        self.made = self.destroyed = 0

    def get(self, key, now: float):
        """The resource of `key`, made on first use; marks it used at `now`."""
        if key not in self.items:
            self.items[key] = self.make(key)
            self.made += 1
        self.last_used.pop(key, None)
        self.last_used[key] = now   # re-inserted: the dict stays ordered by last use
        return self.items[key]

    def sweep(self, now: float):
        """Destroy what was not used for more than linger_s, then the least recently used
        beyond max_size (never one used at `now`)."""
        for key, used in list(self.last_used.items()):   # least recently used first
            if used >= now or not (now - used > self.linger_s or len(self.items) > self.max_size):
                break    # the rest were used later: neither expired nor over the bound
            self._drop(key)

    def close(self):
        for key in list(self.items):
            self._drop(key)

    def _drop(self, key):
        del self.last_used[key]
        self.destroy(self.items.pop(key))
        self.destroyed += 1

    def __len__(self):
        return len(self.items)

    def __contains__(self, key):
        return key in self.items
