#include <graceful/upgrade/pid_file.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "processes.hpp"

namespace up = graceful::upgrade;
namespace fs = std::filesystem;

class pid_file : public ::testing::Test {
protected:
  void SetUp() override {
    char tmpl[] = "/tmp/graceful-pidfile-test-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir); }
  fs::path dir;
};

TEST_F(pid_file, writes_the_pid_and_a_newline) {
  ASSERT_TRUE(up::write_pid_file(dir / "x.pid", 4242));
  EXPECT_EQ(graceful::test::read_file((dir / "x.pid").string()), "4242\n");
  EXPECT_EQ(up::read_pid_file(dir / "x.pid").value(), 4242);
}

TEST_F(pid_file, rewrites_by_rename_leaving_no_temporary_file) {
  ASSERT_TRUE(up::write_pid_file(dir / "x.pid", 1));
  struct stat before{};
  ::stat((dir / "x.pid").c_str(), &before);
  ASSERT_TRUE(up::write_pid_file(dir / "x.pid", 2));
  struct stat after{};
  ::stat((dir / "x.pid").c_str(), &after);
  EXPECT_NE(before.st_ino, after.st_ino) << "a new file renamed over the old one, not an in-place write";
  EXPECT_EQ(up::read_pid_file(dir / "x.pid").value(), 2);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator{}), 1);
}

TEST_F(pid_file, does_not_write_through_a_symlink) {
  auto victim = dir / "victim";
  std::ofstream(victim) << "precious\n";
  fs::create_symlink(victim, dir / "x.pid");
  ASSERT_TRUE(up::write_pid_file(dir / "x.pid", 77));
  EXPECT_EQ(graceful::test::read_file(victim.string()), "precious\n");
  EXPECT_FALSE(fs::is_symlink(dir / "x.pid"));
  EXPECT_EQ(up::read_pid_file(dir / "x.pid").value(), 77);
}

TEST_F(pid_file, read_does_not_follow_a_symlink) {
  std::ofstream(dir / "real") << "123\n";
  fs::create_symlink(dir / "real", dir / "x.pid");
  EXPECT_FALSE(up::read_pid_file(dir / "x.pid"));
}

TEST_F(pid_file, a_missing_directory_is_an_error_not_a_crash) {
  auto r = up::write_pid_file(dir / "no" / "such" / "x.pid", 1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::no_such_file_or_directory);
}

TEST_F(pid_file, a_directory_that_is_a_file_is_an_error) {
  std::ofstream(dir / "file") << "";
  auto r = up::write_pid_file(dir / "file" / "x.pid", 1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::not_a_directory);
}

TEST_F(pid_file, garbage_content_is_invalid_argument) {
  std::ofstream(dir / "x.pid") << "12ab\n";
  auto r = up::read_pid_file(dir / "x.pid");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::invalid_argument);
}

TEST_F(pid_file, removes_only_a_file_that_still_holds_our_pid) {
  ASSERT_TRUE(up::write_pid_file(dir / "x.pid", 5));
  EXPECT_FALSE(up::remove_pid_file_if_owned(dir / "x.pid", 6).value());
  EXPECT_TRUE(fs::exists(dir / "x.pid"));
  EXPECT_TRUE(up::remove_pid_file_if_owned(dir / "x.pid", 5).value());
  EXPECT_FALSE(fs::exists(dir / "x.pid"));
  EXPECT_FALSE(up::remove_pid_file_if_owned(dir / "x.pid", 5).value());
}

TEST_F(pid_file, removing_our_file_never_deletes_the_file_a_successor_writes_meanwhile) {
  // The old process (pid 1 here) removes its file on the way out while its successor writes
  // its own, over and over. A removal may only ever delete a file naming pid 1: the file a
  // successor has just renamed in may vanish only if pid 1 wrote after it (then removed
  // that). A successor that finds its file gone while pid 1 wrote nothing since it started
  // writing has lost it to a read-then-unlink race.
  auto path = dir / "x.pid";
  std::atomic<bool> stop{false};
  std::atomic<long> old_writes{0};
  std::thread old([&] {
    while (!stop.load()) {
      ASSERT_TRUE(up::write_pid_file(path, 1));
      old_writes.fetch_add(1);
      ASSERT_TRUE(up::remove_pid_file_if_owned(path, 1));
    }
  });
  int lost = 0, rounds = 0;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (; rounds < 20000 && lost == 0 && std::chrono::steady_clock::now() < until; ++rounds) {
    long before = old_writes.load();
    pid_t mine = 1000 + rounds;
    ASSERT_TRUE(up::write_pid_file(path, mine));
    auto now = up::read_pid_file(path);
    if (!now && now.error() == std::errc::no_such_file_or_directory && old_writes.load() == before) ++lost;
  }
  stop = true;
  old.join();
  EXPECT_EQ(lost, 0) << "after " << rounds << " writes by the successor";
}
