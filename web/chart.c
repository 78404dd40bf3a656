/*
 * chart.c - a stacked bar chart per day, drawn here as SVG (no script, no
 * download): the gateway's verdicts and the relay queue's outcomes, shown
 * as an <img> in the console.
 */
#include <time.h>

#include "ar.h"
#include "web_priv.h"

void web_day_fmt(int64_t day, char *buf, size_t len)
{
	time_t t = (time_t)(day * 86400);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d", &tm);
}

GString *web_chart_svg(const web_chart_t *c)
{
	const int W = 760, H = 280, L = 48, R = 12, T = 16, B = 56;
	uint64_t max = 0, tick;
	GString *g;
	double bw;

	for (size_t i = 0; i < c->ndays; i++) {
		uint64_t t = 0;
		for (int k = 0; k < c->nseries; k++)
			t += c->values[i * (size_t)c->stride + (size_t)k];
		if (t > max)
			max = t;
	}
	/* a round top, a grid line every tick */
	if (max < 5) {
		max = 5;
		tick = 1;
	} else {
		uint64_t p = 1;
		while (p * 10 <= max)
			p *= 10;
		tick = max / p < 2 ? p / 5 : max / p < 5 ? p / 2 : p;
		if (!tick)
			tick = 1;
		max = (max + tick - 1) / tick * tick;
	}
	g = g_string_new(NULL);
	g_string_append_printf(g, "<svg xmlns=\"http://www.w3.org/2000/svg\" "
	    "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
	    "font-family=\"sans-serif\" font-size=\"11\"><title>%s, last %zu "
	    "days</title><rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>", W,
	    H, W, H, c->title, c->ndays, W, H);
	for (uint64_t y = 0; y <= max; y += tick) {
		double py = T + (H - T - B) * (1.0 - (double)y / (double)max);
		g_string_append_printf(g, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" "
		    "y2=\"%.1f\" stroke=\"#e0e0e0\"/><text x=\"%d\" y=\"%.1f\" "
		    "text-anchor=\"end\" fill=\"#555\">%llu</text>", L, W - R,
		    py, py, L - 6, py + 4, (unsigned long long)y);
	}
	bw = (double)(W - L - R) / (double)c->ndays;
	for (size_t i = 0; i < c->ndays; i++) {
		double x = L + bw * (double)i, y = H - B;
		char date[16];
		web_day_fmt(c->first_day + (int64_t)i, date, sizeof date);
		for (int k = 0; k < c->nseries; k++) {
			uint64_t v = c->values[i * (size_t)c->stride + (size_t)k];
			double h = (double)(H - T - B) * (double)v / (double)max;
			if (!v)
				continue;
			y -= h;
			g_string_append_printf(g, "<rect class=\"bar-%s\" x=\"%.1f\" "
			    "y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
			    "<title>%s %s: %llu</title></rect>", c->names[k],
			    x + bw * 0.1, y, bw * 0.8, h, c->colors[k], date,
			    c->names[k], (unsigned long long)v);
		}
		if (c->ndays <= 14 || i % (c->ndays / 7 + 1) == 0 ||
		    i + 1 == c->ndays)
			g_string_append_printf(g, "<text x=\"%.1f\" y=\"%d\" "
			    "text-anchor=\"middle\" fill=\"#555\">%s</text>",
			    x + bw / 2, H - B + 14, date + 5);
	}
	for (int k = 0; k < c->nseries; k++)
		g_string_append_printf(g, "<rect x=\"%d\" y=\"%d\" width=\"10\" "
		    "height=\"10\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">%s</text>",
		    L + k * 110, H - 22, c->colors[k], L + k * 110 + 14, H - 13,
		    c->names[k]);
	g_string_append(g, "</svg>");
	return g;
}

int web_reply_svg(struct web_req *r, GString *g)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(g->len,
	    g->str, MHD_RESPMEM_MUST_COPY);

	g_string_free(g, TRUE);
	if (!resp)
		return web_reply_error(r, 503, "unavailable", "out of memory",
		    NULL);
	MHD_add_response_header(resp, "Content-Type", "image/svg+xml");
	return web_reply(r, 200, resp, "default-src 'none'; style-src "
	    "'unsafe-inline'; frame-ancestors 'self'; sandbox");
}
