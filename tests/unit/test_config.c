/* Unit tests: the configuration loader (config/config.c).  Each bad file is
 * refused with the message an operator would read; the shipped example loads. */
#include <errno.h>
#include <string.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <syslog.h>

#include "config/config.h"

static char *tmp_dir;

/* Writes TEXT to a file in the test's directory and returns its path. */
static char *write_conf(const char *name, const char *text)
{
  char *path = g_build_filename(tmp_dir, name, NULL);
  g_assert_true(g_file_set_contents(path, text, -1, NULL));
  return path;
}

#define MINIMAL "[sip]\ndomains = example.com\n[pbx]\nhost = 127.0.0.1\n"

static void test_minimal_defaults(void)
{
  g_autofree char *path = write_conf("minimal.conf", MINIMAL);
  g_autofree char *error = NULL;
  config *c = NULL;

  g_assert_cmpint(config_load(path, &c, &error), ==, 0);
  g_assert_null(error);
  g_assert_cmpstr(c->path, ==, path);
  g_assert_cmpint(c->log_level, ==, LOG_INFO);
  g_assert_cmpstr(c->ws.host, ==, "127.0.0.1");
  g_assert_cmpuint(c->ws.port, ==, 8080);
  g_assert_cmpuint(c->wss.port, ==, 0);
  g_assert_null(c->tls_certificate);
  g_assert_cmpstr(c->sip.host, ==, "127.0.0.1");
  g_assert_cmpuint(c->sip.port, ==, 5070);
  g_assert_cmpstr(c->advertised_address, ==, "127.0.0.1");
  g_assert_cmpstr(c->pbx_host, ==, "127.0.0.1");
  g_assert_cmpuint(c->pbx_port, ==, 5060);
  g_assert_cmpint(c->pbx_transport, ==, SIP_TRANSPORT_UDP);
  g_assert_cmpuint(c->max_message_size, ==, 65536);
  g_assert_cmpuint(c->rtp_port_min, ==, 20000);
  g_assert_cmpuint(c->rtp_port_max, ==, 29999);
  g_assert_cmpstr(c->echo_user, ==, "echo");
  g_assert_nonnull(c->ice_addresses);
  g_assert_cmpstr(c->ice_addresses[0], ==, "127.0.0.1");
  g_assert_null(c->ice_addresses[1]);
  g_assert_cmpuint(c->media_timeout, ==, 30);
  g_assert_cmpuint(c->ring_timeout, ==, 60);
  g_assert_cmpuint(c->transaction_timeout, ==, 32);
  /* the security defaults (README "Security") */
  g_assert_cmpint(c->rtp_source, ==, RTP_SOURCE_SDP);
  g_assert_cmpuint(c->n_pbx_trusted, ==, 0);
  g_assert_cmpuint(c->ice_candidates_max, ==, 20);
  g_assert_true(c->ice_loopback); /* ice_addresses = 127.0.0.1 only */
  g_assert_cmpuint(c->n_ice_allow, ==, 0);
  g_assert_cmpuint(c->n_ice_deny, ==, 0);
  g_assert_cmpuint(c->max_calls, ==, 1000);
  g_assert_cmpuint(c->pending_calls_per_connection, ==, 4);
  g_assert_cmpuint(c->pending_calls_per_ip, ==, 32);
  g_assert_true(config_serves_domain(c, "example.com"));
  g_assert_true(config_serves_domain(c, "EXAMPLE.com"));
  g_assert_false(config_serves_domain(c, "example.org"));
  g_assert_false(config_serves_domain(c, NULL));
  config_free(c);
}

static void test_full(void)
{
  g_autofree char *cert = write_conf("cert.pem", "not checked here\n");
  g_autofree char *key = write_conf("key.pem", "not checked here\n");
  g_autofree char *path = write_conf("full.conf",
    "# comment\n"
    "[general]\nlog_level = debug\n\n"
    "[websocket]\nws =\nwss = [::1]:9443\ncertificate = cert.pem\nprivate_key = " "key.pem\n"
    "static_dir = .\n"
    "[sip]\nlisten = 0.0.0.0:5080\nadvertised_address = gw.example.com\n"
    "domains = Example.COM, example.org;voip.example.net\n"
    "[pbx]\nhost = pbx.example.com\ntransport = TLS\ntrusted = 10.1.0.0/16, 2001:db8::5\n"
    "[media]\nrtp_port_min = 30000\nrtp_port_max = 30099\nrtp_source = latch\n"
    "ice_candidates_max = 5\nice_allow = 198.51.100.0/24\nice_deny = 10.0.0.0/8;192.168.0.0/16\n"
    "stun_servers = stun:stun.example.org:3478\n"
    "turn_servers = turn:turn.example.org:3478?transport=udp, turns:turn.example.org:5349\n"
    "turn_username = u\nturn_password = p\nmedia_timeout = 0\n"
    "[limits]\nconnections_per_ip = 0\nmax_message_size = 2048\nmax_registrations = 5\n"
    "max_expires = 600\ntransaction_timeout = 5\nring_timeout = 20\n"
    "max_calls = 50\npending_calls_per_connection = 2\npending_calls_per_ip = 3\n");
  g_autofree char *error = NULL;
  config *c = NULL;

  g_assert_cmpint(config_load(path, &c, &error), ==, 0);
  g_assert_null(error);
  g_assert_cmpint(c->log_level, ==, LOG_DEBUG);
  g_assert_cmpuint(c->ws.port, ==, 0); /* switched off */
  g_assert_cmpstr(c->wss.host, ==, "::1");
  g_assert_cmpuint(c->wss.port, ==, 9443);
  g_assert_cmpstr(c->tls_certificate, ==, cert); /* relative to the file */
  g_assert_cmpstr(c->tls_private_key, ==, key);
  g_assert_cmpstr(c->sip.host, ==, "0.0.0.0");
  g_assert_cmpuint(c->sip.port, ==, 5080);
  g_assert_cmpstr(c->advertised_address, ==, "gw.example.com");
  g_assert_cmpuint(g_strv_length(c->domains), ==, 3);
  g_assert_cmpstr(c->domains[0], ==, "example.com");
  g_assert_true(config_serves_domain(c, "voip.example.net"));
  g_assert_cmpint(c->pbx_transport, ==, SIP_TRANSPORT_TLS);
  g_assert_cmpuint(c->pbx_port, ==, 5061); /* the tls default */
  g_assert_cmpuint(c->n_stun_servers, ==, 1);
  g_assert_cmpuint(c->n_turn_servers, ==, 2);
  g_assert_cmpstr(c->turn_servers[1].url, ==, "turns:turn.example.org:5349");
  g_assert_cmpstr(c->turn_servers[1].username, ==, "u");
  g_assert_cmpstr(c->turn_servers[1].password, ==, "p");
  g_assert_cmpuint(c->connections_per_ip, ==, 0);
  g_assert_cmpuint(c->max_message_size, ==, 2048);
  g_assert_cmpuint(c->max_registrations, ==, 5);
  g_assert_cmpuint(c->max_expires, ==, 600);
  g_assert_cmpuint(c->transaction_timeout, ==, 5);
  g_assert_cmpuint(c->media_timeout, ==, 0); /* never */
  g_assert_cmpuint(c->ring_timeout, ==, 20);
  g_assert_cmpuint(c->max_calls, ==, 50);
  g_assert_cmpuint(c->pending_calls_per_connection, ==, 2);
  g_assert_cmpuint(c->pending_calls_per_ip, ==, 3);
  g_assert_cmpint(c->rtp_source, ==, RTP_SOURCE_LATCH);
  g_assert_cmpuint(c->n_pbx_trusted, ==, 2);
  g_assert_cmpuint(c->pbx_trusted[0].prefix, ==, 16);
  g_assert_cmpint(c->pbx_trusted[1].family, ==, AF_INET6);
  g_assert_cmpuint(c->pbx_trusted[1].prefix, ==, 128);
  g_assert_cmpuint(c->ice_candidates_max, ==, 5);
  g_assert_false(c->ice_loopback); /* every interface */
  g_assert_cmpuint(c->n_ice_allow, ==, 1);
  g_assert_cmpuint(c->n_ice_deny, ==, 2);
  config_free(c);
}

/* One bad file each, and the message it must produce after "FILE:". */
static const struct {
  const char *text;
  const char *message;
} bad[] = {
  { MINIMAL "[limits]\nbogus = 1\n",
    "6: limits.bogus: unknown key" },
  { MINIMAL "[voicemail]\nx = 1\n",
    "5: [voicemail]: unknown group" },
  { "[general]\nlog_level = loud\n" MINIMAL,
    "2: general.log_level: 'loud' is not one of error, warning, notice, info, debug" },
  { MINIMAL "[websocket]\nws = 127.0.0.1\n",
    "6: websocket.ws: '127.0.0.1': expected ADDRESS:PORT" },
  { MINIMAL "[websocket]\nws = 127.0.0.1:99999\n",
    "6: websocket.ws: '127.0.0.1:99999': the port must be a number from 1 to 65535" },
  { MINIMAL "[websocket]\nws = localhost:8080\n",
    "6: websocket.ws: 'localhost:8080': 'localhost' is not an IP address (use 0.0.0.0 or [::] for all)" },
  { MINIMAL "[websocket]\nws = ::1:8080\n",
    "6: websocket.ws: '::1:8080': write an IPv6 address as [ADDRESS]:PORT" },
  { MINIMAL "[websocket]\nws =\n",
    "6: websocket.ws: no listener: set ws, wss or both" },
  { MINIMAL "[websocket]\nws = 127.0.0.1:8080\nwss = 0.0.0.0:8080\n",
    "7: websocket.wss: ws and wss cannot share port 8080" },
  { MINIMAL "[websocket]\ncertificate = /nonexistent/cert.pem\n",
    "6: websocket.certificate: cannot read '/nonexistent/cert.pem': No such file or directory" },
  { MINIMAL "[websocket]\nstatic_dir = /nonexistent\n",
    "6: websocket.static_dir: '/nonexistent' is not a directory" },
  { "[pbx]\nhost = 127.0.0.1\n",
    "0: sip.domains: missing: the SIP domains served are required" },
  { "[sip]\ndomains = ,\n[pbx]\nhost = 127.0.0.1\n",
    "2: sip.domains: at least one domain is needed" },
  { "[sip]\ndomains = exa mple.com/x\n[pbx]\nhost = 127.0.0.1\n",
    "2: sip.domains: 'mple.com/x' is not a domain name" },
  { "[sip]\ndomains = example.com\nlisten = 0.0.0.0:5070\n[pbx]\nhost = 127.0.0.1\n",
    "1: sip.advertised_address: missing: required when listen is 0.0.0.0 (the PBX must know where to reach rtcsipd)" },
  { "[sip]\ndomains = example.com\n",
    "0: pbx.host: missing: the PBX (or outbound proxy) address is required" },
  { MINIMAL "transport = sctp\n",
    "5: pbx.transport: 'sctp' is not one of udp, tcp, tls" },
  { MINIMAL "port = http\n",
    "5: pbx.port: 'http' is not a whole number from 1 to 65535" },
  { MINIMAL "[media]\nrtp_port_min = 30000\nrtp_port_max = 20000\n",
    "7: media.rtp_port_max: the range 30000-20000 holds no port pair" },
  { MINIMAL "[media]\nrtp_port_min = 80\n",
    "6: media.rtp_port_min: '80' is not a whole number from 1024 to 65535" },
  { MINIMAL "[media]\nturn_servers = turn:t.example.org:3478\n",
    "6: media.turn_servers: TURN needs turn_username and turn_password" },
  { MINIMAL "[media]\nstun_servers = t.example.org:3478\n",
    "6: media.stun_servers: 't.example.org:3478' does not start with stun:" },
  { MINIMAL "[media]\nstun_servers = stun:a.example.org:3478, b.example.org\n",
    "6: media.stun_servers: 'b.example.org' does not start with stun:" },
  { MINIMAL "[media]\nturn_servers = turn:t.example.org:3478?transport=sctp\n",
    "6: media.turn_servers: 'turn:t.example.org:3478?transport=sctp': the only parameter is ?transport=udp or ?transport=tcp" },
  { MINIMAL "[limits]\nmax_message_size = 10\n",
    "6: limits.max_message_size: '10' is not a whole number from 1024 to 16777216" },
  { MINIMAL "[limits]\nmax_message_size = 64k\n",
    "6: limits.max_message_size: '64k' is not a whole number from 1024 to 16777216" },
  { MINIMAL "[media]\nmedia_timeout = -1\n",
    "6: media.media_timeout: '-1' is not a whole number from 0 to 86400" },
  { MINIMAL "[limits]\nring_timeout = 0\n",
    "6: limits.ring_timeout: '0' is not a whole number from 1 to 3600" },
  { MINIMAL "trusted = 10.0.0.1/8\n",
    "5: pbx.trusted: '10.0.0.1/8' is not a network (ADDRESS or ADDRESS/PREFIX, host bits zero)" },
  { MINIMAL "trusted = pbx.example.com\n",
    "5: pbx.trusted: 'pbx.example.com' is not a network (ADDRESS or ADDRESS/PREFIX, host bits zero)" },
  { MINIMAL "[media]\nrtp_source = first\n",
    "6: media.rtp_source: 'first' is not one of sdp, latch" },
  { MINIMAL "[media]\nice_deny = 10.0.0.0/33\n",
    "6: media.ice_deny: '10.0.0.0/33' is not a network (ADDRESS or ADDRESS/PREFIX, host bits zero)" },
  { MINIMAL "[media]\nice_loopback = maybe\n",
    "6: media.ice_loopback: 'maybe' is not true or false" },
  { MINIMAL "[media]\nice_candidates_max = 0\n",
    "6: media.ice_candidates_max: '0' is not a whole number from 1 to 100" },
  { MINIMAL "[limits]\npending_calls_per_connection = 10\npending_calls_per_ip = 5\n",
    "6: limits.pending_calls_per_connection: 10 is above pending_calls_per_ip (5)" },
  { MINIMAL "host = 127.0.0.2\n",
    "5: pbx.host: set twice" },
  { MINIMAL "this line is no key\n",
    "5: syntax: expected [group], key = value, or # comment" },
  { "log_level = debug\n" MINIMAL,
    "1: syntax: expected [group], key = value, or # comment" },
};

static void test_bad_files(void)
{
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    g_autofree char *path = write_conf("bad.conf", bad[i].text);
    g_autofree char *expected = g_strdup_printf("%s:%s", path, bad[i].message);
    g_autofree char *error = NULL;
    config *c = NULL;

    g_test_message("case %zu: %s", i, bad[i].message);
    g_assert_cmpint(config_load(path, &c, &error), <, 0);
    g_assert_null(c);
    g_assert_cmpstr(error, ==, expected);
  }
}

static void test_missing_file(void)
{
  g_autofree char *path = g_build_filename(tmp_dir, "absent.conf", NULL);
  g_autofree char *error = NULL;
  config *c = NULL;

  g_assert_cmpint(config_load(path, &c, &error), ==, -ENOENT);
  g_assert_null(c);
  g_assert_true(g_str_has_prefix(error, path));
  g_assert_nonnull(strstr(error, ":0: cannot read the configuration: "));
}

static void test_shipped_example(void)
{
  const char *path = g_getenv("RTCSIPD_EXAMPLE_CONFIG");
  g_autofree char *error = NULL;
  config *c = NULL;

  g_assert_nonnull(path);
  g_assert_cmpint(config_load(path, &c, &error), ==, 0);
  g_assert_null(error);
  /* what the README's run command and the demo rely on */
  g_assert_cmpstr(c->ws.host, ==, "127.0.0.1");
  g_assert_cmpuint(c->ws.port, ==, 8080);
  g_assert_cmpuint(c->wss.port, ==, 8443);
  g_assert_true(config_serves_domain(c, "localhost"));
  config_free(c);
}

int main(int argc, char **argv)
{
  int r;

  g_test_init(&argc, &argv, NULL);
  tmp_dir = g_dir_make_tmp("rtcsipd-test-config-XXXXXX", NULL);
  g_assert_nonnull(tmp_dir);
  g_test_add_func("/config/minimal-defaults", test_minimal_defaults);
  g_test_add_func("/config/full", test_full);
  g_test_add_func("/config/bad-files", test_bad_files);
  g_test_add_func("/config/missing-file", test_missing_file);
  g_test_add_func("/config/shipped-example", test_shipped_example);
  r = g_test_run();
  {
    static const char *const made[] = { "minimal.conf", "full.conf", "cert.pem", "key.pem", "bad.conf" };
    for (size_t i = 0; i < G_N_ELEMENTS(made); i++) {
      g_autofree char *f = g_build_filename(tmp_dir, made[i], NULL);
      g_unlink(f);
    }
    g_rmdir(tmp_dir);
    g_free(tmp_dir);
  }
  return r;
}
