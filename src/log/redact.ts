/**
 * Pure redaction of secrets in what postflow writes out. The public file URL is itself the credential
 * (Frame.io cannot send headers when it pulls), so its token segment is as secret as a password; presigned
 * upload URLs carry their signature in the query string. Both are kept readable enough to debug with:
 * host and file name stay, the credential goes.
 */

export const REDACTED = '[redacted]';
const TOKEN_SEGMENT = '<redacted>';

/**
 * A path segment that looks like a credential: 16+ URL-safe characters (a 128-bit token is 22 in base64url,
 * 32 in hex). Short segments such as the `v4` of API URLs are left alone so those stay readable.
 */
const TOKEN_LIKE = /^[A-Za-z0-9_~.-]{16,}$/;

/**
 * `https://host/<token>/name` → `https://host/<redacted>/name`. Also drops user:password and any query
 * (presigned S3 part URLs sign there). Returns the input unchanged when it is not an absolute URL with a
 * token-like first segment, a query or credentials.
 */
export function redactUrl(url: string): string {
  if (!URL.canParse(url)) return url;
  const u = new URL(url);
  let changed = false;
  if (u.username || u.password) {
    u.username = TOKEN_SEGMENT;
    u.password = '';
    changed = true;
  }
  const segments = u.pathname.split('/');
  // segments[0] is '' (the leading slash); a token is followed by at least the file name.
  if (segments.length >= 3 && TOKEN_LIKE.test(decodeSafe(segments[1]!))) {
    segments[1] = TOKEN_SEGMENT;
    changed = true;
  }
  if (!changed && u.search === '') return url;
  const query = u.search === '' ? '' : `?${TOKEN_SEGMENT}`;
  const auth = u.username ? `${TOKEN_SEGMENT}@` : '';
  return `${u.protocol}//${auth}${u.host}${segments.join('/')}${query}`;
}

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

const URL_IN_TEXT = /\bhttps?:\/\/[^\s"'<>`]+/g;

/** Redacts every http(s) URL inside free text (error messages quote the URL that failed). */
export function redactUrlsIn(text: string): string {
  return text.replace(URL_IN_TEXT, (m) => {
    // Trailing punctuation belongs to the sentence, not the URL.
    const trail = /[.,;:)\]]+$/.exec(m)?.[0] ?? '';
    return redactUrl(m.slice(0, m.length - trail.length)) + trail;
  });
}

/**
 * Replaces each known secret value in `text` (and its URL-encoded and JSON-escaped forms, which is how a
 * secret looks inside a form body or a log line) with `[redacted]`, and redacts URLs. For error messages
 * that may echo a request.
 */
export function redactText(text: string, secrets: Iterable<string> = []): string {
  let out = text;
  for (const form of secretForms(secrets)) out = out.split(form).join(REDACTED);
  return redactUrlsIn(out);
}

/** Every searchable form of the secrets, longest first so a secret containing another is replaced whole. */
export function secretForms(secrets: Iterable<string>): string[] {
  const forms = new Set<string>();
  for (const s of secrets) {
    if (s === '') continue;
    forms.add(s);
    forms.add(encodeURIComponent(s));
    forms.add(JSON.stringify(s).slice(1, -1));
  }
  return [...forms].sort((a, b) => b.length - a.length);
}

/**
 * The secret values known at run time (client secret, tunnel token, the current access and refresh tokens),
 * shared by the logger's last-line scrubber and whoever learns a new secret. Adding is cheap; tokens rotate,
 * so old ones stay in the set (they may still sit in a late log line).
 */
export class SecretSet {
  static readonly MIN_LENGTH = 6;
  readonly #values = new Set<string>();
  #forms: string[] = [];

  add(...values: (string | undefined | null)[]): void {
    let grew = false;
    for (const v of values) {
      // A very short "secret" (a test value, a placeholder) would shred every line it happens to occur in.
      if (v && v.length >= SecretSet.MIN_LENGTH && !this.#values.has(v)) {
        this.#values.add(v);
        grew = true;
      }
    }
    if (grew) this.#forms = secretForms(this.#values);
  }

  get size(): number {
    return this.#values.size;
  }

  /** `text` with every known secret (in any of its forms) replaced by `[redacted]`. */
  scrub(text: string): string {
    let out = text;
    for (const form of this.#forms) if (out.includes(form)) out = out.split(form).join(REDACTED);
    return out;
  }
}
