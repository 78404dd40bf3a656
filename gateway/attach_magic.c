/*
 * attach_magic.c - real file types from content (magic bytes), type
 * names, the extensions a gateway blocks, and the expected type of a name
 * or a declared Content-Type (for "mismatch" findings).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ar.h"
#include "gateway/scan.h"

static const char *const ftype_names[GW_FT_COUNT] = {
	[GW_FT_UNKNOWN] = "unknown",
	[GW_FT_PE] = "pe",
	[GW_FT_ELF] = "elf",
	[GW_FT_MACHO] = "macho",
	[GW_FT_SCRIPT] = "script",
	[GW_FT_LNK] = "lnk",
	[GW_FT_MSI] = "msi",
	[GW_FT_OLE] = "ole",
	[GW_FT_OLE_MACRO] = "ole-macro",
	[GW_FT_ZIP] = "zip",
	[GW_FT_OOXML] = "ooxml",
	[GW_FT_OOXML_MACRO] = "ooxml-macro",
	[GW_FT_JAR] = "jar",
	[GW_FT_ODF] = "odf",
	[GW_FT_RAR] = "rar",
	[GW_FT_7Z] = "7z",
	[GW_FT_GZIP] = "gzip",
	[GW_FT_BZIP2] = "bzip2",
	[GW_FT_XZ] = "xz",
	[GW_FT_CAB] = "cab",
	[GW_FT_TAR] = "tar",
	[GW_FT_ISO] = "iso",
	[GW_FT_PDF] = "pdf",
	[GW_FT_RTF] = "rtf",
	[GW_FT_HTML] = "html",
	[GW_FT_IMAGE] = "image",
};

const char *gw_ftype_name(gw_ftype_t t)
{
	if ((int)t < 0 || t >= GW_FT_COUNT)
		return "unknown";
	return ftype_names[t];
}

int gw_ftype_parse(const char *name)
{
	int t;

	for (t = 0; t < GW_FT_COUNT; t++)
		if (strcasecmp(name, ftype_names[t]) == 0)
			return t;
	return -1;
}

int gw_ftype_parse_set(const char *list, uint64_t *out, char *err,
    size_t errlen)
{
	const char *p = list;
	uint64_t set = 0;

	while (p && *p) {
		char word[32];
		size_t n = strcspn(p, ", ");
		int t;
		if (n == 0) {
			p++;
			continue;
		}
		if (n >= sizeof word) {
			snprintf(err, errlen, "unknown file type \"%.*s\"",
			    (int)(n > 40 ? 40 : n), p);
			return AR_EINVAL;
		}
		memcpy(word, p, n);
		word[n] = '\0';
		if ((t = gw_ftype_parse(word)) < 0) {
			snprintf(err, errlen, "unknown file type \"%s\" (known: "
			    "pe elf macho script lnk msi ole ole-macro zip ooxml "
			    "ooxml-macro jar odf rar 7z gzip bzip2 xz cab tar iso "
			    "pdf rtf html image unknown)", word);
			return AR_EINVAL;
		}
		set |= GW_FT_BIT(t);
		p += n;
	}
	*out = set;
	return 0;
}

static int at(const unsigned char *b, size_t len, size_t off, const void *m,
    size_t mlen)
{
	return len >= off + mlen && memcmp(b + off, m, mlen) == 0;
}

static int html_start(const unsigned char *b, size_t len)
{
	static const char *const tags[] = { "<!doctype html", "<html",
		"<head", "<body", "<script", "<svg", "<hta:" };
	size_t i = 0, t;

	if (at(b, len, 0, "\xef\xbb\xbf", 3))
		i = 3;
	while (i < len && i < 512 && isspace(b[i]))
		i++;
	for (t = 0; t < AR_ARRAY_LEN(tags); t++) {
		size_t n = strlen(tags[t]);
		if (len >= i + n && strncasecmp((const char *)b + i, tags[t], n) == 0)
			return 1;
	}
	return 0;
}

gw_ftype_t gw_ftype_sniff(const unsigned char *b, size_t len)
{
	size_t i;

	if (len < 2)
		return GW_FT_UNKNOWN;
	if (at(b, len, 0, "MZ", 2))
		return GW_FT_PE;
	if (at(b, len, 0, "\x7f" "ELF", 4))
		return GW_FT_ELF;
	if (at(b, len, 0, "\xfe\xed\xfa\xce", 4) ||
	    at(b, len, 0, "\xfe\xed\xfa\xcf", 4) ||
	    at(b, len, 0, "\xce\xfa\xed\xfe", 4) ||
	    at(b, len, 0, "\xcf\xfa\xed\xfe", 4))
		return GW_FT_MACHO;
	/* universal binary; a Java class has the same magic but a version
	 * (>= 45) where a universal binary counts its architectures */
	if (at(b, len, 0, "\xca\xfe\xba\xbe", 4) && len >= 8 &&
	    ar_get_u32(b + 4) > 0 && ar_get_u32(b + 4) < 20)
		return GW_FT_MACHO;
	if (at(b, len, 0, "#!", 2))
		return GW_FT_SCRIPT;
	if (at(b, len, 0, "\x4c\x00\x00\x00\x01\x14\x02\x00", 8))
		return GW_FT_LNK;
	if (at(b, len, 0, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8))
		return GW_FT_OLE;
	if (at(b, len, 0, "PK\x03\x04", 4) || at(b, len, 0, "PK\x05\x06", 4) ||
	    at(b, len, 0, "PK\x07\x08", 4))
		return GW_FT_ZIP;
	if (at(b, len, 0, "Rar!\x1a\x07", 6))
		return GW_FT_RAR;
	if (at(b, len, 0, "7z\xbc\xaf\x27\x1c", 6))
		return GW_FT_7Z;
	if (at(b, len, 0, "\x1f\x8b", 2))
		return GW_FT_GZIP;
	if (at(b, len, 0, "BZh", 3) && len > 3 && b[3] >= '1' && b[3] <= '9')
		return GW_FT_BZIP2;
	if (at(b, len, 0, "\xfd" "7zXZ\x00", 6))
		return GW_FT_XZ;
	if (at(b, len, 0, "MSCF\0\0\0\0", 8))
		return GW_FT_CAB;
	if (at(b, len, 257, "ustar", 5))
		return GW_FT_TAR;
	/* ISO 9660 / UDF volume descriptors start at 32 KiB */
	for (i = 0x8001; i <= 0x9001; i += 0x800)
		if (at(b, len, i, "CD001", 5) || at(b, len, i, "BEA01", 5) ||
		    at(b, len, i, "NSR02", 5) || at(b, len, i, "NSR03", 5))
			return GW_FT_ISO;
	if (at(b, len, 0, "{\\rtf", 5))
		return GW_FT_RTF;
	/* PDF readers accept the header anywhere in the first KiB */
	for (i = 0; i + 5 <= len && i < 1024; i++)
		if (b[i] == '%' && at(b, len, i, "%PDF-", 5))
			return GW_FT_PDF;
	if (at(b, len, 0, "\x89PNG\r\n\x1a\n", 8) ||
	    at(b, len, 0, "\xff\xd8\xff", 3) || at(b, len, 0, "GIF87a", 6) ||
	    at(b, len, 0, "GIF89a", 6) || at(b, len, 0, "II*\0", 4) ||
	    at(b, len, 0, "MM\0*", 4) ||
	    (at(b, len, 0, "RIFF", 4) && at(b, len, 8, "WEBP", 4)))
		return GW_FT_IMAGE;
	if (html_start(b, len))
		return GW_FT_HTML;
	return GW_FT_UNKNOWN;
}

const char *const gw_attach_default_ext[] = {
	/* programs and libraries */
	"exe", "scr", "com", "pif", "cpl", "dll", "sys", "ocx", "drv",
	/* installers and packages */
	"msi", "msp", "mst", "appx", "appxbundle", "msix", "msixbundle",
	"application", "gadget", "jar",
	/* scripts */
	"bat", "cmd", "js", "jse", "vbs", "vbe", "wsf", "wsh", "wsc", "sct",
	"hta", "ps1", "ps1xml", "ps2", "psc1", "psm1", "msh", "msh1",
	"scf", "reg", "inf", "chm", "lnk", "url", "settingcontent-ms",
	/* disk images */
	"iso", "img", "vhd", "vhdx",
	NULL
};

/* The extension of name (after the last dot, trailing dots and spaces
 * ignored as Windows ignores them), lower case, into out. */
void gw_attach_ext(const char *name, char *out, size_t outlen)
{
	size_t len = strlen(name), i, n;
	const char *dot;

	out[0] = '\0';
	while (len && (name[len - 1] == '.' || name[len - 1] == ' '))
		len--;
	for (dot = NULL, i = 0; i < len; i++) {
		if (name[i] == '.')
			dot = name + i;
		else if (name[i] == '/' || name[i] == '\\')
			dot = NULL;
	}
	if (!dot)
		return;
	n = (size_t)(name + len - dot - 1);
	if (n == 0 || n >= outlen)
		return;
	for (i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)dot[1 + i]);
	out[n] = '\0';
}

int gw_attach_ext_blocked(const char *name, const char *const *list)
{
	char ext[32];
	size_t i;

	if (!name)
		return 0;
	gw_attach_ext(name, ext, sizeof ext);
	if (!ext[0])
		return 0;
	for (i = 0; list[i]; i++)
		if (strcmp(ext, list[i]) == 0)
			return 1;
	return 0;
}

/* What a name promises.  -1: nothing in particular. */
static int expected_from_ext(const char *name)
{
	static const struct { const char *ext; gw_ftype_t t; } map[] = {
		{ "pdf", GW_FT_PDF }, { "zip", GW_FT_ZIP },
		{ "docx", GW_FT_OOXML }, { "xlsx", GW_FT_OOXML },
		{ "pptx", GW_FT_OOXML }, { "doc", GW_FT_OLE },
		{ "xls", GW_FT_OLE }, { "ppt", GW_FT_OLE }, { "rtf", GW_FT_RTF },
		{ "jpg", GW_FT_IMAGE }, { "jpeg", GW_FT_IMAGE },
		{ "png", GW_FT_IMAGE }, { "gif", GW_FT_IMAGE },
		{ "tif", GW_FT_IMAGE }, { "tiff", GW_FT_IMAGE },
		{ "rar", GW_FT_RAR }, { "7z", GW_FT_7Z }, { "gz", GW_FT_GZIP },
		{ "tgz", GW_FT_GZIP }, { "bz2", GW_FT_BZIP2 },
		{ "xz", GW_FT_XZ }, { "cab", GW_FT_CAB }, { "tar", GW_FT_TAR },
		{ "odt", GW_FT_ODF }, { "ods", GW_FT_ODF },
		{ "txt", GW_FT_UNKNOWN }, { "csv", GW_FT_UNKNOWN },
		{ "log", GW_FT_UNKNOWN },
	};
	char ext[16];
	size_t i;

	if (!name)
		return -1;
	gw_attach_ext(name, ext, sizeof ext);
	for (i = 0; i < AR_ARRAY_LEN(map); i++)
		if (strcmp(ext, map[i].ext) == 0)
			return (int)map[i].t;
	return -1;
}

static int expected_from_ctype(const char *ct)
{
	if (!ct)
		return -1;
	if (strcasecmp(ct, "application/pdf") == 0)
		return GW_FT_PDF;
	if (strncasecmp(ct, "image/", 6) == 0 &&
	    strcasecmp(ct, "image/svg+xml") != 0)
		return GW_FT_IMAGE;
	if (strcasecmp(ct, "application/zip") == 0 ||
	    strcasecmp(ct, "application/x-zip-compressed") == 0)
		return GW_FT_ZIP;
	if (strcasecmp(ct, "application/msword") == 0 ||
	    strcasecmp(ct, "application/vnd.ms-excel") == 0 ||
	    strcasecmp(ct, "application/vnd.ms-powerpoint") == 0)
		return GW_FT_OLE;
	if (strncasecmp(ct, "application/vnd.openxmlformats-", 31) == 0)
		return GW_FT_OOXML;
	if (strcasecmp(ct, "text/plain") == 0 || strcasecmp(ct, "text/csv") == 0)
		return GW_FT_UNKNOWN;
	return -1;
}

/* Types that are one family (a .docx that is a plain ZIP is no lie worth
 * a finding; macros are flagged on their own). */
static gw_ftype_t family(gw_ftype_t t)
{
	switch (t) {
	case GW_FT_OLE_MACRO: case GW_FT_MSI: return GW_FT_OLE;
	case GW_FT_OOXML: case GW_FT_OOXML_MACRO: case GW_FT_JAR:
	case GW_FT_ODF: return GW_FT_ZIP;
	case GW_FT_TAR: return GW_FT_GZIP;     /* .tgz */
	default: return t;
	}
}

static int is_program(gw_ftype_t t)
{
	return t == GW_FT_PE || t == GW_FT_ELF || t == GW_FT_MACHO ||
	    t == GW_FT_LNK || t == GW_FT_MSI || t == GW_FT_SCRIPT ||
	    t == GW_FT_JAR || t == GW_FT_ISO;
}

static int lies(int expect, gw_ftype_t real)
{
	if (expect < 0)
		return 0;
	if (expect == GW_FT_UNKNOWN)         /* text: only programs lie */
		return is_program(real);
	if (real == GW_FT_UNKNOWN)           /* no signature: say nothing */
		return 0;
	if (expect == GW_FT_GZIP && real == GW_FT_TAR)
		return 0;
	return family((gw_ftype_t)expect) != family(real);
}

int gw_attach_mismatch(const char *name, const char *ctype, gw_ftype_t real)
{
	return lies(expected_from_ext(name), real) ||
	    lies(expected_from_ctype(ctype), real);
}

/* --- OLE2 compound files: MSI class id, VBA project -------------------- */

/* {000C1084-0000-0000-C000-000000000046} Windows Installer package,
 * ...1086 patch, ...1082 transform, as stored (little-endian GUID). */
static const unsigned char msi_clsid[3][16] = {
	{ 0x84, 0x10, 0x0c, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46 },
	{ 0x86, 0x10, 0x0c, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46 },
	{ 0x82, 0x10, 0x0c, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0x46 },
};
/* "_VBA_PROJECT" in UTF-16LE: the name of the stream every VBA project
 * has (Word: Macros/VBA, Excel: _VBA_PROJECT_CUR/VBA), as it appears in a
 * directory entry */
static const unsigned char vba_name[] = {
	'_', 0, 'V', 0, 'B', 0, 'A', 0, '_', 0, 'P', 0, 'R', 0, 'O', 0,
	'J', 0, 'E', 0, 'C', 0, 'T', 0 };

void gw_ole_init(gw_ole_t *o)
{
	memset(o, 0, sizeof *o);
}

void gw_ole_feed(gw_ole_t *o, const unsigned char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++, o->off++) {
		unsigned char c = buf[i];
		if (o->off < sizeof o->hdr) {
			o->hdr[o->off] = c;
			if (o->off == 0x31 + 2) {
				/* first directory sector (0x30) and sector
				 * shift (0x1e) are known */
				unsigned shift = o->hdr[0x1e] | o->hdr[0x1f] << 8;
				uint32_t sect = (uint32_t)o->hdr[0x30] |
				    (uint32_t)o->hdr[0x31] << 8 |
				    (uint32_t)o->hdr[0x32] << 16 |
				    (uint32_t)o->hdr[0x33] << 24;
				if ((shift == 9 || shift == 12) && sect < 0xfffffffau)
					o->dir_off = ((uint64_t)sect + 1) << shift;
			}
		}
		/* the root entry's class id: directory entry 0, offset 0x50 */
		if (o->dir_off && o->off >= o->dir_off + 0x50 &&
		    o->off < o->dir_off + 0x60)
			o->clsid[o->off - o->dir_off - 0x50] = c;
		if (o->dir_off && o->off == o->dir_off + 0x5f) {
			size_t k;
			for (k = 0; k < 3; k++)
				if (memcmp(o->clsid, msi_clsid[k], 16) == 0)
					o->msi = 1;
		}
		/* "_VBA_PROJECT" anywhere (a directory sector) */
		if (c == vba_name[o->match])
			o->match++;
		else
			o->match = c == vba_name[0] ? 1 : 0;
		if (o->match == sizeof vba_name) {
			o->macro = 1;
			o->match = 0;
		}
	}
}

gw_ftype_t gw_ole_type(const gw_ole_t *o)
{
	if (o->msi)
		return GW_FT_MSI;
	return o->macro ? GW_FT_OLE_MACRO : GW_FT_OLE;
}
