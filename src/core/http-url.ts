// What an http(s) URL setting must be (the configuration file and the admin API check the same).

/** What is wrong with a URL that must be http(s), or null. */
export function httpUrlProblem(value: string): string | null {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    // reported below
  }
  return !url || (url.protocol !== "http:" && url.protocol !== "https:")
    ? `${JSON.stringify(value)} is not an http(s) URL`
    : null;
}
