"""HTTP benchmarks (GET throughput and latency, RSS) against bare FastAPI: to be written."""

if __name__ == "__main__":
    print("bench_http: not written yet")
