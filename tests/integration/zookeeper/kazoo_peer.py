#!/usr/bin/python3
"""kazoo's side of the interop tests (run by zookeeper_integration_test.cpp).

  kazoo_peer.py hold HOSTS PATH IDENTIFIER DONE_FILE   takes kazoo's Lock on PATH, prints
                                                       "held", releases once DONE_FILE exists
  kazoo_peer.py try HOSTS PATH                         prints "acquired" or "blocked"
                                                       (lock.acquire(blocking=False))
  kazoo_peer.py hold_read HOSTS PATH IDENTIFIER DONE_FILE  the same with kazoo's ReadLock
  kazoo_peer.py try_read HOSTS PATH                    "acquired" or "blocked" for ReadLock
  kazoo_peer.py try_write HOSTS PATH                   "acquired" or "blocked" for WriteLock
  kazoo_peer.py end_session HOSTS SESSION_ID PASSWD_HEX  joins that session and closes it
"""
import os
import sys
import time

from kazoo.client import KazooClient


def main():
    mode, hosts = sys.argv[1], sys.argv[2]
    if mode == "end_session":
        zk = KazooClient(hosts=hosts, client_id=(int(sys.argv[3]), bytes.fromhex(sys.argv[4])))
        zk.start(timeout=5)  # The caller tries again when the session's owner wins it back.
        zk.stop()
        zk.close()
        print("ended", flush=True)
        return 0
    zk = KazooClient(hosts=hosts)
    zk.start(timeout=20)
    try:
        if mode in ("hold", "hold_read"):
            make = zk.Lock if mode == "hold" else zk.ReadLock
            lock = make(sys.argv[3], sys.argv[4])
            lock.acquire(timeout=20)
            print("held", flush=True)
            deadline = time.time() + 60
            while not os.path.exists(sys.argv[5]) and time.time() < deadline:
                time.sleep(0.02)
            lock.release()
        elif mode in ("try", "try_read", "try_write"):
            make = {"try": zk.Lock, "try_read": zk.ReadLock, "try_write": zk.WriteLock}[mode]
            lock = make(sys.argv[3], "kazoo-try")
            if lock.acquire(blocking=False):
                print("acquired", flush=True)
                lock.release()
            else:
                print("blocked", flush=True)
        else:
            print("unknown mode " + mode, flush=True)
            return 2
    finally:
        zk.stop()
        zk.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
