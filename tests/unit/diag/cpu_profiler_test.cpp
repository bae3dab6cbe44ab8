// gperftools' CPU profiler through graceful::diag.
#include <graceful/diag/cpu_profiler.hpp>

#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <unistd.h>

#include <graceful/diag/errc.hpp>

namespace gd = graceful::diag;

TEST(cpu_profiler, stop_without_a_running_profile_is_an_error) {
  auto r = gd::stop_cpu_profile();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), gd::errc::profiler_not_running);
}

TEST(cpu_profiler, start_then_stop_writes_a_non_empty_profile_and_refuses_a_second_start) {
  auto file = std::filesystem::temp_directory_path() / ("graceful-prof-" + std::to_string(::getpid()) + ".pprof");
  ASSERT_TRUE(gd::start_cpu_profile(file));
  EXPECT_EQ(gd::running_cpu_profile(), file);
  auto again = gd::start_cpu_profile(file.string() + ".2");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), gd::errc::profiler_start_failed);
  volatile unsigned long x = 1;
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
  while (std::chrono::steady_clock::now() < until) x = x * 3 + 1;
  auto r = gd::stop_cpu_profile();
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r.value(), file);
  EXPECT_FALSE(gd::running_cpu_profile());
  EXPECT_GT(std::filesystem::file_size(file), 0u);
  std::filesystem::remove(file);
}

TEST(cpu_profiler, an_unwritable_file_is_an_error_not_a_crash) {
  auto r = gd::start_cpu_profile("/nonexistent-dir/x.pprof");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), gd::errc::profiler_start_failed);
  EXPECT_FALSE(gd::running_cpu_profile());
}
