#!/usr/bin/env bash
# Make sure the services the test suite talks to are up: PostgreSQL (127.0.0.1:5432) and Redis (6379),
# and Debian's Chromium for the browser tests. Starts what is down; installs what is missing.
set -uo pipefail

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi
if [ "${SKIP_BROWSER:-0}" != "1" ] && ! command -v chromium >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "WARNING: could not install chromium; browser tests will fail"
fi
# The checkpoint label tests render the PDF with poppler (pdftoppm, pdffonts, pdftotext) and the labels embed a
# TrueType CJK font (WenQuanYi Zen Hei).
if ! command -v pdftoppm >/dev/null 2>&1 || [ ! -f /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ]; then
  echo "installing poppler-utils and fonts-wqy-zenhei for the label tests"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils fonts-wqy-zenhei >/dev/null) \
    || echo "WARNING: could not install poppler-utils/fonts-wqy-zenhei; label tests will fail"
fi
pg_isready -h 127.0.0.1 -p 5432 && redis-cli -h 127.0.0.1 -p 6379 ping
