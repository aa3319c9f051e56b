// Each card does nothing on a page without it (the sign-in page, a page without a store).
downloadCard();
restoreCard();
undoCard();
storedCard();
