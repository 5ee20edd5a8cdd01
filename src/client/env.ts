/** How code inside a sandbox finds Berth: set by the platform, read by `berth/client`. */
export const CLIENT_ENV = {
  /** Berth's base URL, when the caller sets it explicitly (outside Berth, or tests). */
  url: 'BERTH_URL',
  /** A file holding Berth's base URL, written by the server once it listens. */
  urlFile: 'BERTH_URL_FILE',
} as const;
