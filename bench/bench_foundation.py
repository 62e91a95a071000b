"""Foundation pages against the trivial /healthz view, on gunicorn: `python -m bench.bench_foundation`."""
import argparse

from bench._harness import bench_env, hammer, login_session, report, seed_demo, serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    env = bench_env()
    with serve(env=env, workers=2, threads=4) as base:
        seed_demo(env)
        auth = login_session(base, "admin", "callwell-demo")
        kw = {"concurrency": args.concurrency, "requests": args.requests}
        hammer(base + "/healthz", concurrency=2, requests=100)  # warm-up
        rows = [
            ("healthz (baseline)", hammer(base + "/healthz", **kw)),
            ("login page (anonymous)", hammer(base + "/login/", **kw)),
            ("home (logged in)", hammer(base + "/", headers=auth, **kw)),
            ("settings/dialer (logged in)", hammer(base + "/settings/dialer/", headers=auth, **kw)),
        ]
    report(rows)


if __name__ == "__main__":
    main()
