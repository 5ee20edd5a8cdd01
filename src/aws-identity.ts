/** The AWS identity Berth presents: one region, one fixed account, and the ARNs built from them. */
export const REGION = process.env.AWS_REGION ?? 'us-east-1';
export const ACCOUNT_ID = '000000000000';

export function functionArn(name: string): string {
  return `arn:aws:lambda:${REGION}:${ACCOUNT_ID}:function:${name}`;
}
