/* wellknown.c: the autoconfig XML (spec §9.4: six servers in a fixed
 * order) and the MTA-STS policy (§9.5). Ports are the configured ones
 * (the standard ports in a real deployment). */
#include <string.h>

#include "core/config.h"
#include "http/http_int.h"

static int server(struct buf *out, const char *dir, const char *type, const char *host,
                  int port, const char *socket)
{
    return buf_printf(out,
                      "    <%sServer type=\"%s\">\n"
                      "      <hostname>%s</hostname>\n"
                      "      <port>%d</port>\n"
                      "      <socketType>%s</socketType>\n"
                      "      <authentication>password-cleartext</authentication>\n"
                      "      <username>%%EMAILADDRESS%%</username>\n"
                      "    </%sServer>\n",
                      dir, type, host, port, socket, dir);
}

int autoconfig_xml(const struct config *c, struct buf *out)
{
    struct buf d = {0}, h = {0};
    int rc = html_escape(&d, c->mail_domain, strlen(c->mail_domain));
    rc |= html_escape(&h, c->mail_domain_bare, strlen(c->mail_domain_bare));
    if (rc == 0 && d.data && h.data) {
        rc |= buf_printf(out,
                         "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                         "<clientConfig version=\"1.1\">\n"
                         "  <emailProvider id=\"%s\">\n"
                         "    <domain>%s</domain>\n"
                         "    <displayName>%s chatmail</displayName>\n"
                         "    <displayShortName>%s</displayShortName>\n",
                         d.data, d.data, d.data, d.data);
        rc |= server(out, "incoming", "imap", h.data, c->imaps_port, "SSL");
        rc |= server(out, "incoming", "imap", h.data, c->imap_port, "STARTTLS");
        rc |= server(out, "incoming", "imap", h.data, c->https_port, "SSL");
        rc |= server(out, "outgoing", "smtp", h.data, c->submissions_port, "SSL");
        rc |= server(out, "outgoing", "smtp", h.data, c->submission_port, "STARTTLS");
        rc |= server(out, "outgoing", "smtp", h.data, c->https_port, "SSL");
        rc |= buf_append_str(out, "  </emailProvider>\n</clientConfig>\n");
    }
    buf_free(&d);
    buf_free(&h);
    return rc ? -1 : 0;
}

int mta_sts_txt(const struct config *c, struct buf *out)
{
    return buf_printf(out, "version: STSv1\nmode: enforce\nmx: %s\nmax_age: 2419200\n",
                      c->mail_domain);
}
