// Serving dlock's metrics for Prometheus to scrape: a minimal HTTP endpoint (GET /metrics) on
// a loopback port, answering with `to_prometheus`. The example scrapes itself once, as
// Prometheus would, and checks the answer, so CI proves the endpoint works.
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/streambuf.hpp>
#include <asio/write.hpp>
#include <dlock/dlock.hpp>
#include <iostream>
#include <string>
#include <thread>

using asio::ip::tcp;
using namespace std::chrono_literals;

// Answers `requests` connections with the metrics (404 for any path but /metrics). A real
// service loops forever on its own thread.
void serve(tcp::acceptor& acceptor, const dlock::Store& store, int requests) {
  for (int served = 0; served < requests; ++served) {
    tcp::socket peer(acceptor.get_executor());
    asio::error_code ec;
    acceptor.accept(peer, ec);
    if (ec) return;
    asio::streambuf request;
    asio::read_until(peer, request, "\r\n\r\n", ec);
    if (ec) continue;
    std::string line;
    std::istream(&request) >> line >> line;  // "GET /metrics HTTP/1.1": the path.
    const bool found = line == "/metrics";
    const std::string body =
        found ? dlock::to_prometheus(store.metrics(), {{"store", std::string(store.scheme())},
                                                       {"service", "example"}})
              : "not found\n";
    const std::string response =
        std::string(found ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.1 404 Not Found\r\n") +
        "Content-Type: text/plain; version=0.0.4\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    asio::write(peer, asio::buffer(response), ec);
  }
}

// What a scraper does: one GET, the whole answer.
std::string scrape(const tcp::endpoint& at) {
  asio::io_context io;
  tcp::socket s(io);
  s.connect(at);
  const std::string get = "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n";
  asio::write(s, asio::buffer(get));
  std::string answer;
  asio::error_code ec;
  asio::read(s, asio::dynamic_buffer(answer), ec);  // Until the server closes (eof).
  return answer;
}

int main() {
  dlock::Store store = dlock::open("memory://metrics-http");
  for (int i = 0; i < 3; ++i) {
    dlock::Lease lease = store.acquire({}, "jobs/" + std::to_string(i), {.ttl = 10s});
    std::this_thread::sleep_for(5ms);  // Some hold time to show.
  }

  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const tcp::endpoint at = acceptor.local_endpoint();
  std::thread server([&] { serve(acceptor, store, 1); });
  const std::string answer = scrape(at);
  server.join();

  std::cout << answer << "\n";
  const bool ok = answer.rfind("HTTP/1.1 200 OK", 0) == 0 &&
                  answer.find("dlock_hold_seconds_count{service=\"example\",store=\"memory\"} 3") !=
                      std::string::npos;
  std::cout << (ok ? "scrape ok" : "scrape FAILED") << "\n";
  return ok ? 0 : 1;
}
