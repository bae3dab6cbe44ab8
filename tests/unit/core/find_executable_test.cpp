#include <graceful/core/find_executable.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace fs = std::filesystem;

namespace {

// Sets PATH for one test and restores it afterwards.
class path_env {
public:
  explicit path_env(const char* value) {
    if (const char* old = std::getenv("PATH")) old_ = old;
    if (value) ::setenv("PATH", value, 1);
    else ::unsetenv("PATH");
  }
  ~path_env() {
    if (old_) ::setenv("PATH", old_->c_str(), 1);
    else ::unsetenv("PATH");
  }

private:
  std::optional<std::string> old_;
};

class find_executable : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("graceful-find-exe-" + std::to_string(::getpid()));
    fs::create_directories(dir_ / "a");
    fs::create_directories(dir_ / "b");
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path make(const fs::path& p, bool exec) {
    std::ofstream(p) << "#!/bin/sh\n";
    ::chmod(p.c_str(), exec ? 0755 : 0644);
    return p;
  }
  fs::path dir_;
};

TEST_F(find_executable, takes_the_first_path_entry_that_has_an_executable_file) {
  make(dir_ / "a" / "tool", false);        // not executable: skipped
  auto want = make(dir_ / "b" / "tool", true);
  make(dir_ / "tool", true);               // later in PATH: not reached
  fs::create_directories(dir_ / "a" / "dirtool");  // a directory is never a program
  make(dir_ / "b" / "dirtool", true);
  std::string path = (dir_ / "a").string() + ":" + (dir_ / "b").string() + ":" + dir_.string();
  path_env env(path.c_str());
  auto r = graceful::find_executable("tool");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r.value(), want);
  EXPECT_EQ(graceful::find_executable("dirtool").value(), dir_ / "b" / "dirtool");
}

TEST_F(find_executable, a_name_with_a_slash_is_not_searched) {
  path_env env((dir_ / "a").string().c_str());
  EXPECT_EQ(graceful::find_executable("./x/tool").value(), fs::path("./x/tool"));
  EXPECT_EQ(graceful::find_executable("/bin/sh").value(), fs::path("/bin/sh"));
}

TEST_F(find_executable, missing_or_empty_is_no_such_file) {
  path_env env((dir_ / "a").string().c_str());
  EXPECT_EQ(graceful::find_executable("graceful-no-such-tool").error(), std::errc::no_such_file_or_directory);
  EXPECT_EQ(graceful::find_executable("").error(), std::errc::no_such_file_or_directory);
}

TEST_F(find_executable, an_empty_path_entry_is_the_current_directory) {
  make(dir_ / "here", true);
  auto cwd = fs::current_path();
  fs::current_path(dir_);
  std::string path = (dir_ / "a").string() + "::";
  {
    path_env env(path.c_str());
    auto r = graceful::find_executable("here");
    ASSERT_TRUE(r);
    EXPECT_EQ(fs::canonical(r.value()), fs::canonical(dir_ / "here"));
  }
  fs::current_path(cwd);
}

TEST_F(find_executable, without_path_searches_what_execvp_searches) {
  path_env env(nullptr);
  // sh is in /bin (or /usr/bin, merged-/usr); /usr/local/bin is not on the default path.
  auto r = graceful::find_executable("sh");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_TRUE(r.value() == "/bin/sh" || r.value() == "/usr/bin/sh") << r.value();
}

} // namespace
