/**
 * Keeps the API key out of every message, log line and error this package produces.
 *
 * {@link resolveConfig} registers the key it found; {@link redact} then removes it (and the forms it travels in:
 * base64 of "api:<key>", URL-encoded) from any text. WandbError runs its message through it, so code that builds
 * an error from server or network text cannot leak the key even when the server echoes it back.
 */

const REPLACEMENT = "[REDACTED]";
const secrets = new Set<string>();

/** Every form of a secret that could appear in text we build or receive. */
function formsOf(secret: string): string[] {
  const forms = new Set<string>([secret]);
  forms.add(Buffer.from(`api:${secret}`).toString("base64"));
  forms.add(Buffer.from(secret).toString("base64"));
  forms.add(encodeURIComponent(secret));
  return [...forms].filter((f) => f.length >= 4);
}

/** Registers a secret so that {@link redact} removes it from any text from now on. Short strings are ignored. */
export function registerSecret(secret: string | undefined | null): void {
  if (!secret || secret.length < 8) return;
  for (const f of formsOf(secret)) secrets.add(f);
}

/** Forgets a secret registered with {@link registerSecret} (tests). */
export function unregisterSecret(secret: string): void {
  for (const f of formsOf(secret)) secrets.delete(f);
}

// "Authorization: Basic xxx", "Bearer xxx" and netrc "password xxx" shapes, whatever the secret is.
const CREDENTIAL_SHAPES = [
  /\b(authorization\s*[:=]\s*)("?)(?:basic|bearer)\s+[A-Za-z0-9+/=._~-]+/gi,
  /\b(basic|bearer)(\s+)[A-Za-z0-9+/=._~-]{16,}/gi,
  /\b(password\s+)()\S+/gi,
  /\b(api[_-]?key\s*[:=]\s*)("?)[^\s"',]+/gi,
];

/**
 * Returns `text` with every registered secret (and `extra` ones) replaced by "[REDACTED]", and credential-looking
 * shapes (Authorization headers, netrc passwords, api_key=...) masked.
 */
export function redact(text: string, extra: readonly (string | undefined | null)[] = []): string {
  let out = text;
  const all = new Set(secrets);
  for (const e of extra) if (e && e.length >= 8) for (const f of formsOf(e)) all.add(f);
  // Longest first, so that a secret containing another is removed whole.
  for (const s of [...all].sort((a, b) => b.length - a.length)) {
    if (out.includes(s)) out = out.split(s).join(REPLACEMENT);
  }
  out = out.replace(CREDENTIAL_SHAPES[0]!, (_m, p1: string, q: string) => `${p1}${q}${REPLACEMENT}`);
  out = out.replace(CREDENTIAL_SHAPES[1]!, (_m, p1: string, ws: string) => `${p1}${ws}${REPLACEMENT}`);
  out = out.replace(CREDENTIAL_SHAPES[2]!, (_m, p1: string) => `${p1}${REPLACEMENT}`);
  out = out.replace(CREDENTIAL_SHAPES[3]!, (_m, p1: string, q: string) => `${p1}${q}${REPLACEMENT}`);
  return out;
}
