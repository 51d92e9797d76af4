-- wrk's script for bench/wrk.py: what each request is (WRK_MODE), and the summary as one JSON line.
--   get     the URL as given (GET /health)
--   orders  POST /orders: a JSON order with a fresh order id, and the bearer token in WRK_TOKEN
--   sqs     SQS SendMessage (JSON protocol) to the queue WRK_QUEUE: the producer's message shape,
--           a fresh order id as its group and deduplication id; LocalStack does not check the
--           signature, so the Authorization header only names the region and the service
-- WRK_PREFIX makes this run's order ids its own; each wrk thread numbers its requests.

local mode = os.getenv("WRK_MODE") or "get"
local prefix = os.getenv("WRK_PREFIX") or "wrk"
local threads, thread_id, sent = 0, 0, 0

function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

local function order(id)
  local customer = sent % 1000 + 1  -- a seeded customer: every order commits
  return string.format(
    '{"order_id": "%s", "customer_id": %d, "amount": "19.99", "currency": "USD", "note": ""}',
    id, customer)
end

local function next_id()
  sent = sent + 1
  return string.format("%s-%d-%d", prefix, thread_id, sent)
end

local orders_headers = {
  ["Content-Type"] = "application/json",
  ["Authorization"] = "Bearer " .. (os.getenv("WRK_TOKEN") or ""),
}
local sqs_headers = {
  ["Content-Type"] = "application/x-amz-json-1.0",
  ["X-Amz-Target"] = "AmazonSQS.SendMessage",
  ["Authorization"] = "AWS4-HMAC-SHA256 Credential=test/20260101/"
    .. (os.getenv("WRK_REGION") or "us-east-1") .. "/sqs/aws4_request, SignedHeaders=host, Signature=0",
}

if mode == "orders" then
  request = function()
    return wrk.format("POST", "/orders", orders_headers, order(next_id()))
  end
elseif mode == "sqs" then
  request = function()
    local id = next_id()
    local body = order(id):gsub('\\', '\\\\'):gsub('"', '\\"')
    return wrk.format("POST", "/", sqs_headers, string.format(
      '{"QueueUrl": "%s", "MessageBody": "%s", "MessageGroupId": "%s", "MessageDeduplicationId": "%s"}',
      os.getenv("WRK_QUEUE"), body, id, id))
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.6f, "p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3,
    e.connect, e.read, e.write, e.status, e.timeout))
end
