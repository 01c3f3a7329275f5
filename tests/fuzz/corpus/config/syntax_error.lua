return {
  backends = {
