// Raw gRPC peers on the project's own etcd protos: E1/E2's limit and the E3 counter.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "bench/counter.hpp"
#include "bench/raw_peers.hpp"
#include "rpc.grpc.pb.h"

namespace bench {
namespace {

using clock_type = std::chrono::steady_clock;
namespace pb = etcdserverpb;

std::unique_ptr<pb::KV::Stub> stub(const std::string& hp) {
  auto ch = grpc::CreateChannel(hp, grpc::InsecureChannelCredentials());
  return pb::KV::NewStub(ch);
}

void check(const grpc::Status& s, const char* what) {
  if (!s.ok()) throw std::runtime_error(std::string(what) + ": " + s.error_message());
}

// One acquire Txn (create if absent) + one release Txn (delete if value matches).
bool pair(pb::KV::Stub& kv, const std::string& key, const std::string& token) {
  pb::TxnRequest acq;
  auto* c = acq.add_compare();
  c->set_key(key);
  c->set_target(pb::Compare::CREATE);
  c->set_result(pb::Compare::EQUAL);
  c->set_create_revision(0);
  auto* put = acq.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(token);
  pb::TxnResponse r1;
  grpc::ClientContext c1;
  check(kv.Txn(&c1, acq, &r1), "Txn acquire");
  pb::TxnRequest rel;
  auto* c2 = rel.add_compare();
  c2->set_key(key);
  c2->set_target(pb::Compare::VALUE);
  c2->set_result(pb::Compare::EQUAL);
  c2->set_value(token);
  rel.add_success()->mutable_request_delete_range()->set_key(key);
  pb::TxnResponse r2;
  grpc::ClientContext cc2;
  check(kv.Txn(&cc2, rel, &r2), "Txn release");
  return r1.succeeded() && r2.succeeded();
}

class EtcdCounter final : public Counter {
 public:
  EtcdCounter(const std::string& hp, std::string key) : kv_(stub(hp)), key_(std::move(key)) {}
  long get() override {
    pb::RangeRequest req;
    req.set_key(key_);
    pb::RangeResponse resp;
    grpc::ClientContext ctx;
    check(kv_->Range(&ctx, req, &resp), "Range");
    return resp.kvs_size() ? std::stol(resp.kvs(0).value()) : 0;
  }
  void set(long v) override {
    pb::PutRequest req;
    req.set_key(key_);
    req.set_value(std::to_string(v));
    pb::PutResponse resp;
    grpc::ClientContext ctx;
    check(kv_->Put(&ctx, req, &resp), "Put");
  }

 private:
  std::unique_ptr<pb::KV::Stub> kv_;
  std::string key_;
};

}  // namespace

std::unique_ptr<Counter> make_etcd_counter(const std::string& hp, const std::string& key) {
  return std::make_unique<EtcdCounter>(hp, key);
}

RawResult raw_etcd_pairs(const std::string& hp, long iters, long workers, double secs) {
  RawResult out;
  auto kv = stub(hp);
  const std::string token = "0123456789abcdef0123456789abcdef";
  auto t0 = clock_type::now();
  if (workers <= 1) {
    out.lat_us.reserve(static_cast<std::size_t>(iters));
    for (long i = 0; i < iters; ++i) {
      auto s = clock_type::now();
      if (pair(*kv, "bench/raw/" + std::to_string(i % 64), token)) out.pairs++;
      out.lat_us.push_back(
          std::chrono::duration<double, std::micro>(clock_type::now() - s).count() / 2);
    }
  } else {
    std::atomic<long> pairs{0};
    std::vector<std::thread> threads;
    const auto stop_at = t0 + std::chrono::duration<double>(secs);
    for (long w = 0; w < workers; ++w) {
      threads.emplace_back([&, w] {
        const std::string key = "bench/raw/w" + std::to_string(w);
        while (clock_type::now() < stop_at) {
          if (pair(*kv, key, token)) pairs++;
        }
      });
    }
    for (auto& t : threads) t.join();
    out.pairs = pairs;
  }
  out.elapsed_s = std::chrono::duration<double>(clock_type::now() - t0).count();
  out.note = "raw gRPC Txn acquire + Txn release, one channel";
  return out;
}

}  // namespace bench
