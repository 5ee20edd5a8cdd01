/**
 * The demo accounts the stand-ins know, and the credentials each accepts. In real life these
 * would be issued by Dropbox and by the partner; here they are fixed so the demo works out of the
 * box. setup.mjs stores the same values as each customer's Berth secrets.
 */
export const DEMO_ACCOUNTS = {
  acme: {
    DROPBOX_TOKEN: 'sl.acme-dbx-7Hq2vR9m',
    PARTNER_TOKEN: 'pk_acme_4f9c1e8a',
  },
  globex: {
    DROPBOX_TOKEN: 'sl.globex-dbx-Zp81kT3w',
    PARTNER_TOKEN: 'pk_globex_b27d03f6',
  },
};

/** The account a bearer token belongs to for one service (`DROPBOX_TOKEN` or `PARTNER_TOKEN`), or undefined. */
export function accountOf(authorization, kind) {
  const token = /^Bearer (.+)$/.exec(authorization ?? '')?.[1];
  return Object.keys(DEMO_ACCOUNTS).find((account) => token !== undefined && DEMO_ACCOUNTS[account][kind] === token);
}
