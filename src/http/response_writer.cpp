#include "http/response_writer.hpp"

#include <charconv>

#include "http/message_access.hpp"

namespace graceful::http::detail {

namespace {

void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

} // namespace

std::string_view reason_phrase(int s) noexcept {
  switch (s) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
  }
}

bool wants_close(const response& res) noexcept {
  for (auto& [k, v] : message_access::headers(res))
    if (iequals(k, "connection") && iequals(v, "close")) return true;
  return false;
}

void append_status_lines(std::string& o, int status, std::string_view server_name, std::string_view date) {
  o += "HTTP/1.1 ";
  append_number(o, static_cast<std::uint64_t>(status));
  o += ' ';
  o += reason_phrase(status);
  o += "\r\n";
  if (!server_name.empty()) {
    o += "Server: ";
    o += server_name;
    o += "\r\n";
  }
  o += "Date: ";
  o += date;
  o += "\r\n";
}

void response_writer::head(const response& res, const head_stamp& stamp, const head_framing& f) {
  auto& o = out_;
  if (res.status == 200 && !stamp.ok_head.empty()) o += stamp.ok_head;
  else append_status_lines(o, res.status, server_name_, stamp.date);
  if (status_has_body(res.status)) {
    if (!res.content_type.empty()) {
      o += "Content-Type: ";
      o += res.content_type;
      o += "\r\n";
    }
    if (f.chunked) {
      o += "Transfer-Encoding: chunked\r\n";
    } else if (!f.no_length) {
      o += "Content-Length: ";
      append_number(o, f.content_length);
      o += "\r\n";
    }
  }
  for (auto& [k, v] : message_access::headers(res)) {
    if (iequals(k, "content-length") || iequals(k, "transfer-encoding") || iequals(k, "connection")) continue;
    o += k;
    o += ": ";
    o += v;
    o += "\r\n";
  }
  if (f.close) o += "Connection: close\r\n";
  else if (f.http10) o += "Connection: keep-alive\r\n";
  o += "\r\n";
}

void response_writer::whole(response& res, const head_stamp& stamp, bool close, bool http10, bool head_request) {
  if (res.status < 100 || res.status > 599) res.status = 500;
  head_framing f;
  f.content_length = res.body.size();
  f.close = close;
  f.http10 = http10;
  head(res, stamp, f);
  if (status_has_body(res.status) && !head_request) out_ += res.body;
}

void response_writer::chunk(std::string_view data) {
  char buf[20];
  auto r = std::to_chars(buf, buf + sizeof buf, data.size(), 16);
  out_.append(buf, r.ptr);
  out_ += "\r\n";
  out_.append(data);
  out_ += "\r\n";
}

} // namespace graceful::http::detail
