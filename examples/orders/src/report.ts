/** Runs on a schedule with an EventBridge "Scheduled Event". */
export const handler = async (event: { time: string }) => {
  console.log(`nightly report for the day before ${event.time}`);
};
