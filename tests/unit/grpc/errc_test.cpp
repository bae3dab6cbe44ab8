// Every graceful::grpc error has its own message in the "graceful.grpc" category.
#include <graceful/grpc/errc.hpp>

#include <set>

#include <gtest/gtest.h>

namespace ggrpc = graceful::grpc;

TEST(grpc_errc, each_value_has_its_own_message_in_its_category) {
  std::set<std::string> messages;
  for (auto e : {ggrpc::errc::not_a_listener, ggrpc::errc::acceptor_stopped, ggrpc::errc::calls_cancelled}) {
    std::error_code ec = e;
    EXPECT_STREQ(ec.category().name(), "graceful.grpc");
    EXPECT_NE(ec.message(), "unknown graceful.grpc error");
    messages.insert(ec.message());
  }
  EXPECT_EQ(messages.size(), 3u);
  EXPECT_EQ(std::error_code(99, ggrpc::grpc_category()).message(), "unknown graceful.grpc error");
}
