#include <graceful/core/unique_fd.hpp>

#include <cerrno>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <graceful/core/last_errno.hpp>
#include <graceful/upgrade/unique_fd.hpp>

namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(unique_fd, closes_on_destruction_and_reset) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  {
    graceful::unique_fd a(p[0]);
    graceful::unique_fd b(p[1]);
    EXPECT_TRUE(a);
    b.reset();
    EXPECT_FALSE(b);
    EXPECT_FALSE(is_open(p[1]));
    EXPECT_TRUE(is_open(p[0]));
  }
  EXPECT_FALSE(is_open(p[0]));
}

TEST(unique_fd, moves_and_releases_ownership) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  graceful::unique_fd a(p[0]), keep(p[1]);
  graceful::unique_fd b = std::move(a);
  EXPECT_FALSE(a);
  EXPECT_EQ(b.get(), p[0]);
  int raw = b.release();
  EXPECT_FALSE(b);
  EXPECT_TRUE(is_open(raw));
  ::close(raw);
}

TEST(unique_fd, the_upgrade_layer_uses_the_same_type) {
  static_assert(std::is_same_v<graceful::upgrade::unique_fd, graceful::unique_fd>);
}

TEST(last_errno, is_errno_in_the_generic_category) {
  errno = EBADF;
  auto ec = graceful::last_errno();
  EXPECT_EQ(ec.category(), std::generic_category());
  EXPECT_EQ(ec, std::errc::bad_file_descriptor);
  ASSERT_EQ(::close(-1), -1);
  EXPECT_EQ(graceful::last_errno().value(), EBADF);
}

} // namespace
