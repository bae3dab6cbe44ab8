#include <graceful/upgrade/pid_file.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include <sys/inotify.h>
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
  // its own, over and over. inotify reports, in order, every rename into x.pid (with the temp
  // name, which carries the writer's pid) and every unlink of it. remove_pid_file_if_owned(1)
  // may only ever delete a file that pid 1 renamed in: an unlink right after a successor's
  // rename is the read-then-unlink race that loses the successor's file.
  auto path = dir / "x.pid";
  int in = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  ASSERT_GE(in, 0);
  ASSERT_GE(::inotify_add_watch(in, dir.c_str(), IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE), 0);
  std::atomic<bool> stop{false};
  std::vector<std::string> events;  // "rename <pid>" or "unlink", in the kernel's order
  std::thread reader([&] {
    alignas(inotify_event) char buf[64 * 1024];
    std::string from;
    auto drain = [&] {
      ssize_t n;
      while ((n = ::read(in, buf, sizeof buf)) > 0) {
        for (char* p = buf; p < buf + n;) {
          auto* e = reinterpret_cast<inotify_event*>(p);
          std::string name = e->len ? e->name : "";
          if (e->mask & IN_MOVED_FROM) from = name;  // ".x.pid.<pid>.<random>.tmp"
          if ((e->mask & IN_MOVED_TO) && name == "x.pid") events.push_back("rename " + from.substr(7, from.find('.', 7) - 7));
          if ((e->mask & IN_DELETE) && name == "x.pid") events.push_back("unlink");
          if (e->mask & IN_Q_OVERFLOW) events.push_back("overflow");
          p += sizeof(inotify_event) + e->len;
        }
      }
    };
    while (!stop.load()) {
      drain();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    drain();
  });
  std::thread old([&] {
    while (!stop.load()) {
      ASSERT_TRUE(up::write_pid_file(path, 1));
      ASSERT_TRUE(up::remove_pid_file_if_owned(path, 1));
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  });
  // Pauses between writes on both sides, as between real processes: a writer in a tight loop
  // would keep the directory lock busy and starve the other side's bounded wait.
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(up::write_pid_file(path, 1000 + i));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  stop = true;
  old.join();
  reader.join();
  ::close(in);
  int lost = 0, unlinks = 0;
  std::string last;
  for (auto& e : events) {
    ASSERT_NE(e, "overflow") << "the inotify queue overflowed: the order is unknown";
    if (e == "unlink") {
      ++unlinks;
      if (last != "rename 1") ++lost;
    }
    last = e;
  }
  EXPECT_GT(unlinks, 0) << "the old process never removed its file: nothing was tested";
  EXPECT_EQ(lost, 0) << "of " << unlinks << " removals, " << lost << " deleted a successor's file";
}
