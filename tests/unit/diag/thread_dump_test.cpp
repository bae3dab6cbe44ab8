// Stack capture of every thread, in-process, and the documented file names.
#include <graceful/diag/thread_dump.hpp>

#include <atomic>
#include <thread>

#include <gtest/gtest.h>
#include <unistd.h>

#include <graceful/diag/errc.hpp>

namespace gd = graceful::diag;
using namespace std::chrono_literals;

namespace {
std::atomic<bool> g_release{false};
std::atomic<bool> g_parked{false};

__attribute__((noinline)) void diag_test_parked_in_a_uniquely_named_function() {
  g_parked = true;
  while (!g_release.load()) std::this_thread::sleep_for(1ms);
  asm volatile("" ::: "memory");
}
} // namespace

TEST(thread_dump, captures_a_parked_thread_by_function_name) {
  g_release = false;
  std::thread t(diag_test_parked_in_a_uniquely_named_function);
  while (!g_parked.load()) std::this_thread::sleep_for(1ms);
  auto r = gd::capture_all_threads(graceful::deadline::after(2s));
  g_release = true;
  t.join();
  ASSERT_TRUE(r) << r.error().message();
  bool found = false;
  for (const auto& th : r.value())
    for (const auto& f : th.frames) found = found || f.find("diag_test_parked_in_a_uniquely_named_function") != std::string::npos;
  EXPECT_TRUE(found) << gd::format_dump("test", r.value(), {});
  // This thread and the parked one at least.
  std::size_t captured = 0;
  for (const auto& th : r.value()) captured += th.captured ? 1 : 0;
  EXPECT_GE(captured, 2u);
}

TEST(thread_dump, file_name_follows_the_go_zero_time_format) {
  auto name = gd::diag_file_name("server", "threads", "dump");
  std::string prefix = "server-" + std::to_string(::getpid()) + "-threads-";
  ASSERT_EQ(name.size(), prefix.size() + 10 + 5) << name;
  EXPECT_EQ(name.substr(0, prefix.size()), prefix);
  EXPECT_EQ(name.substr(prefix.size() + 10), ".dump");
  EXPECT_EQ(name.substr(prefix.size(), 10).find_first_not_of("0123456789"), std::string::npos) << name;
}

TEST(thread_dump, file_name_uses_month_day_hour_minute_second_in_local_time) {
  std::tm tm{};
  tm.tm_year = 2024 - 1900;
  tm.tm_mon = 0;   // January
  tm.tm_mday = 2;
  tm.tm_hour = 15;
  tm.tm_min = 4;
  tm.tm_sec = 5;
  tm.tm_isdst = -1;
  auto when = std::chrono::system_clock::from_time_t(std::mktime(&tm));
  auto name = gd::diag_file_name("p", "cpu", "pprof", when);
  EXPECT_EQ(name, "p-" + std::to_string(::getpid()) + "-cpu-0102150405.pprof");
}

TEST(thread_dump, format_lists_sections_after_the_threads) {
  std::vector<gd::thread_stack> threads{{.tid = 42, .name = "worker", .frames = {"f at a.cpp:1"}, .captured = true}};
  auto text = gd::format_dump("prog", threads, {{"http in-flight", "GET /a"}});
  auto t = text.find("--- thread 42 \"worker\" ---\n#0  f at a.cpp:1");
  auto s = text.find("=== http in-flight ===\nGET /a\n");
  ASSERT_NE(t, std::string::npos) << text;
  ASSERT_NE(s, std::string::npos) << text;
  EXPECT_LT(t, s);
}

TEST(diag_errc, every_value_has_a_message_in_the_diag_category) {
  for (auto e : {gd::errc::dump_signal_in_use, gd::errc::dump_in_progress, gd::errc::profiler_start_failed,
                 gd::errc::profiler_not_running}) {
    std::error_code ec = e;
    EXPECT_EQ(ec.category().name(), std::string("graceful.diag"));
    EXPECT_NE(ec.message(), "unknown graceful.diag error");
  }
}
